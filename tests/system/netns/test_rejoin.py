"""Issue 15 item 7: a node cut off for a while and healed is back in the cluster within about
a second. libraft 0.15 keeps the leader's TCP stream to the cut-off node while the kernel
retransmits into the partition with exponential backoff (0.2, 0.4, ... 6.4 s): healed after
8 s, the node heard nothing for about 4-5 s more (measured by the fault harness,
docs/reliability.md). vigild now ends the raft streams with a peer when its liveness
channel sees it again (raft_transport_kick), and libraft connects again at once.

Run: /usr/bin/python3 -m pytest tests/system/netns/test_rejoin.py -v -rs
"""

import time

from testbed import NetnsCluster, wait_for

CUT_S = 8.0
REJOIN_DEADLINE_S = 2.0     # the goal is 1 s; the margin is for a loaded machine


def view(node):
    try:
        status, doc = node.api.get("/api/cluster/runtime", timeout=2.0)
    except Exception:  # noqa: BLE001 - no view
        return None
    return doc if status == 200 else None


def rejoined(leader, node):
    mine, theirs = view(node), view(leader)
    if not mine or not theirs or mine.get("leader_id") != leader.id:
        return False
    states = {s["id"]: s.get("state") for s in theirs.get("node_states") or []}
    return theirs.get("leader_id") == leader.id and states.get(node.id) == "CLUSTER_ACTIVE"


def test_a_follower_cut_off_for_8_s_rejoins_within_2_s_of_the_heal(testbed, tmp_path):
    hosts = [testbed.add_host(f"ctl{i + 1}", "controller") for i in range(3)]
    cluster = NetnsCluster(testbed.registry, tmp_path / "data", hosts)
    cluster.start()
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    times = []
    for _ in range(2):
        testbed.isolate(follower.host)
        wait_for(lambda: not rejoined(leader, follower), 5.0, "the leader to see it gone")
        time.sleep(CUT_S)   # the length of the cut is the test's subject
        testbed.heal()
        healed = time.monotonic()
        wait_for(lambda: rejoined(leader, follower), 20.0, "the healed follower to rejoin")
        times.append(time.monotonic() - healed)
        print(f"measured: rejoin after an {CUT_S:.0f} s cut: {times[-1] * 1000:.0f} ms")
    assert max(times) <= REJOIN_DEADLINE_S, f"rejoin took {times} s after the heal"
