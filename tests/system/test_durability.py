"""Issue 2: 10,000 acknowledged objects survive a SIGTERM restart and a kill -9."""

import threading

import harness
from harness import assert_all_present, wait_until, write_many

N = 10_000


def test_10k_objects_survive_restart_and_kill9(node):
    api = node.api
    acked, failed = write_many(api, [f"dur-{i:05d}" for i in range(N)], workers=16)
    assert not failed, f"{len(failed)} writes failed on a healthy node, e.g. {list(failed.items())[:3]}"
    assert len(acked) == N
    assert_all_present(api, acked)
    applied_before = node.own_state()["applied_index"]

    # clean stop and restart
    assert node.term(deadline=15) == 0, "SIGTERM must be a clean stop (exit 0)"
    node.start(timeout=60)
    node_leader = wait_until(lambda: node.runtime().get("leader_id") == 1, 30, "node 1 to lead again")
    assert node_leader
    assert_all_present(api, acked)
    assert node.own_state()["applied_index"] >= applied_before

    # kill -9 while 16 writers are busy: every acknowledged write is kept
    acked2, failed2 = {}, {}
    stop = threading.Event()
    names2 = [f"kill-{i:05d}" for i in range(N)]
    writer = threading.Thread(target=write_many, args=(api, names2),
                              kwargs=dict(workers=16, stop=stop, acked=acked2, failed=failed2),
                              daemon=True)
    writer.start()
    try:
        wait_until(lambda: len(acked2) >= 2000, 60, "2000 acknowledged writes before the kill")
        node.kill9()
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not writer.is_alive(), "writer threads did not finish"
    assert len(acked2) < N, "the kill came after every write finished: nothing was in flight"

    node.start(timeout=60)
    wait_until(lambda: node.runtime().get("leader_id") == 1, 30, "node 1 to lead after kill -9")
    in_flight = {n for n, err in failed2.items() if err != "not sent"}
    all_acked = dict(acked, **acked2)
    stored = assert_all_present(api, all_acked, allowed_extra=in_flight)
    # and the same after one more hard restart with nothing in flight
    node.restart(hard=True, timeout=60)
    wait_until(lambda: node.runtime().get("leader_id") == 1, 30, "node 1 to lead after 2nd kill -9")
    assert {o["name"]: o["uuid"] for o in api.list_all("healthmonitor")} == stored
