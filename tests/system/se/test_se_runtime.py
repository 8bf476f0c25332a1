"""The controller-side SE runtime from real sessions (issue 12, items 5 and 6): real
vigil-se processes against a real three-node cluster. The runtime fields on the
serviceengine object on every node, the SE events once per occurrence, no raft write per
heartbeat, and Waiting for Service Engines ending on the real SEs that were connected
before a full restart (or --se-wait-s), never waiting for a deleted SE.

Every wait has a deadline; every process is stopped by its PID (the harness and `procs`).
"""
import os
import signal
import time

from cluster_helpers import (COPYING, READY, WAITING, events, history, parse_time_ms,
                             recovery_after, status_of, three_nodes, wait_status)
from conftest import wait_for
from fake_controller import make_key
from test_se_channel_client import HEARTBEAT_MS, MISS_LIMIT, ChannelSE
from test_se_with_cluster import connected_count, known_hosts_from_cli


def register(leader, tmp_path, name):
    """A serviceengine object NAME with a fresh key; returns (object, key path)."""
    key = tmp_path / ("key-" + name)
    pub = make_key(key)
    status, obj = leader.api.post("/api/serviceengine", {"name": name, "public_key": pub})
    assert status == 201, (status, obj)
    return obj, key


def start_se(procs, tmp_path, cluster, key, known_hosts, name):
    d = tmp_path / ("se-" + name)
    d.mkdir(exist_ok=True)
    return ChannelSE(procs, d, key, known_hosts, [n.se_listen for n in cluster.nodes],
                     name=name).start()


def se_object(node, uuid):
    status, obj = node.api.get("/api/serviceengine/" + uuid)
    assert status == 200, (status, obj)
    return obj


def count_events(node, event_id, se_name):
    return len([e for e in events(node, event_id)
                if (e.get("event_details") or {}).get("se_name") == se_name])


def applied_index(node):
    rt = node.runtime()
    return next(e["applied_index"] for e in rt["node_states"] if e["id"] == rt["node_id"])


def wait_quiet(node, quiet_s, timeout):
    """Until NODE's applied index stayed put for QUIET_S seconds."""
    deadline = time.monotonic() + timeout
    last, since = applied_index(node), time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, f"{node.label}: raft writes go on"
        time.sleep(0.1)  # polling interval
        now = applied_index(node)
        if now != last:
            last, since = now, time.monotonic()


def wait_connected(se, timeout=30):
    wait_for(lambda: se.state() == "CONNECTED", timeout, f"{se.name} CONNECTED")
    wait_for(lambda: connected_count(se) == 3, timeout, f"{se.name}: sessions to all three")


def restart_all(cluster):
    for node in cluster.nodes:
        node.kill9()
    for node in cluster.nodes:
        node.start(wait=False)
    return cluster.wait_leader(30)


def one_se_cluster(cluster_factory, procs, tmp_path):
    """Three nodes and one real SE 'se-1' CONNECTED to all: (cluster, leader, object, se)."""
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    obj, key = register(leader, tmp_path, "se-1")
    kh = known_hosts_from_cli(leader, tmp_path / "known_hosts")
    se = start_se(procs, tmp_path, cluster, key, kh, "se-1")
    wait_connected(se)
    return cluster, leader, obj, se


def waiting_span(leader):
    """The last recovery's Waiting and Copying entries of the leader's status history."""
    rec = recovery_after(history(leader), 0)
    w = next(h for h in rec if h["status"] == WAITING)
    c = next(h for h in rec if h["status"] == COPYING)
    return w, c, (parse_time_ms(c["time"]) - parse_time_ms(w["time"])) / 1000


def test_runtime_fields_events_and_no_raft_write_per_heartbeat(cluster_factory, procs, tmp_path):
    cluster, leader, obj, se = one_se_cluster(cluster_factory, procs, tmp_path)

    ids = {n.id for n in cluster.nodes}
    for node in cluster.nodes:
        def shown(node=node):
            o = se_object(node, obj["uuid"])
            return o if (o["oper_status"] == {"state": "OPER_UP"} and o["se_state"] == "CONNECTED"
                         and o["connected_since"] and o["last_heartbeat"]) else None
        o = wait_for(shown, 15, f"{node.label} shows se-1 up and CONNECTED")
        assert o["controller_node"] in ids, o
        age = time.time() * 1000 - parse_time_ms(o["last_heartbeat"])
        assert age < 3000, f"{node.label}: last_heartbeat {age:.0f} ms old: {o}"
        # the config the SE serves, as it told this node
        wait_for(lambda node=node: se_object(node, obj["uuid"])["config_version"]
                 == se.status()["config_version"] > 0, 10,
                 f"{node.label} shows the SE's config_version")
    # one SE_UP, on every node, naming a controller node
    for node in cluster.nodes:
        wait_for(lambda node=node: count_events(node, "SE_UP", "se-1") == 1, 10,
                 f"{node.label}: SE_UP recorded")
    up = [e for e in events(leader, "SE_UP")][0]
    assert up["module"] == "SEMGR" and up["event_details"]["controller_node"] in ids, up

    # idle for several heartbeats (SE every 200 ms, nodes every 1 s): no raft write. The
    # last state reports (CONNECTING -> CONNECTED, one per node) land first.
    wait_quiet(leader, 1.0, 10)
    before = applied_index(leader)
    first = parse_time_ms(se_object(leader, obj["uuid"])["last_heartbeat"])
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        assert applied_index(leader) == before, "a raft write while the SE only heartbeats"
        time.sleep(0.2)  # polling interval of a bounded observation
    later = se_object(leader, obj["uuid"])
    assert parse_time_ms(later["last_heartbeat"]) > first + 2000, later  # served from memory
    assert count_events(leader, "SE_UP", "se-1") == 1

    # the SE stops: SE_DOWN once, OPER_DOWN on every node (and no config_version: no session)
    se.stop()
    for node in cluster.nodes:
        wait_for(lambda node=node: count_events(node, "SE_DOWN", "se-1") == 1, 15,
                 f"{node.label}: SE_DOWN recorded")
        wait_for(lambda node=node: se_object(node, obj["uuid"])["oper_status"]["state"]
                 == "OPER_DOWN", 10, f"{node.label}: se-1 OPER_DOWN")
    assert count_events(leader, "SE_UP", "se-1") == 1


def test_a_stalled_se_is_one_heartbeat_failure_then_down(cluster_factory, procs, tmp_path):
    """SIGSTOP: every node closes its session after 3 silent intervals of the SE's own
    --heartbeat-ms: one SE_HEARTBEAT_FAILURE, one SE_DOWN; SIGCONT: it reconnects, a second
    SE_UP."""
    cluster, leader, obj, se = one_se_cluster(cluster_factory, procs, tmp_path)
    wait_for(lambda: count_events(leader, "SE_UP", "se-1") == 1, 10, "SE_UP")
    os.kill(se.proc.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        wait_for(lambda: count_events(leader, "SE_DOWN", "se-1") == 1, 20, "SE_DOWN")
        failures = [e for e in events(leader, "SE_HEARTBEAT_FAILURE")]
        assert len(failures) == 1, failures
        assert failures[0]["event_details"] == {"se_name": "se-1", "missed": 3}, failures
        # The stall lasts at least MISS_LIMIT + 2 of the SE's intervals, so that the SE
        # resumes HEADLESS by its own count (a resume in the middle of its own failure would
        # report CONTROLLER_HEARTBEAT_FAILED on reconnecting: a second, real occurrence).
        time.sleep(max(0.0, stopped + (MISS_LIMIT + 2) * HEARTBEAT_MS / 1000 - time.monotonic()))
    finally:
        os.kill(se.proc.pid, signal.SIGCONT)
    wait_connected(se)
    wait_for(lambda: count_events(leader, "SE_UP", "se-1") == 2, 15, "a second SE_UP")
    wait_for(lambda: se_object(leader, obj["uuid"])["oper_status"]["state"] == "OPER_UP", 10,
             "OPER_UP again")
    assert count_events(leader, "SE_HEARTBEAT_FAILURE", "se-1") == 1
    assert count_events(leader, "SE_DOWN", "se-1") == 1


def test_headless_recovered_once(cluster_factory, procs, tmp_path):
    cluster, leader, obj, se = one_se_cluster(cluster_factory, procs, tmp_path)
    wait_for(lambda: count_events(leader, "SE_UP", "se-1") == 1, 10, "SE_UP")

    for node in cluster.nodes:
        node.kill9()
    wait_for(lambda: se.state() == "HEADLESS", 30, "HEADLESS with no controller")
    for node in cluster.nodes:
        node.start(wait=False)
    leader = cluster.wait_leader(30)
    wait_connected(se, 60)
    ev = wait_for(lambda: [e for e in events(leader, "SE_HEADLESS_RECOVERED")] or None, 15,
                  "SE_HEADLESS_RECOVERED recorded")
    d = ev[0]["event_details"]
    assert d["se_name"] == "se-1" and d["headless_since"] < d["headless_until"], ev
    # every node's session is reported by now: still exactly one
    wait_for(lambda: se_object(leader, obj["uuid"])["se_state"] == "CONNECTED", 10, "CONNECTED")
    for node in cluster.nodes:
        wait_for(lambda node=node: len(node.runtime()["node_states"]) == 3, 10, "members")
        assert count_events(node, "SE_HEADLESS_RECOVERED", "se-1") == 1, events(node)
    assert count_events(leader, "SE_DOWN", "se-1") == 0


def test_waiting_for_ses_names_the_missing_one_and_forgets_a_deleted_one(cluster_factory, procs,
                                                                          tmp_path):
    se_wait_s = 10
    cluster = three_nodes(cluster_factory, extra_flags=["--se-wait-s", str(se_wait_s)])
    leader = cluster.leader()
    obj_a, key_a = register(leader, tmp_path, "se-a")
    obj_b, key_b = register(leader, tmp_path, "se-b")
    kh = known_hosts_from_cli(leader, tmp_path / "known_hosts")
    se_a = start_se(procs, tmp_path, cluster, key_a, kh, "se-a")
    se_b = start_se(procs, tmp_path, cluster, key_b, kh, "se-b")
    for se in (se_a, se_b):
        wait_connected(se)
        wait_for(lambda se=se: count_events(leader, "SE_UP", se.name) == 1, 10, "SE_UP")

    # the whole cluster restarts with se-b kept away: Waiting names se-b until --se-wait-s
    for node in cluster.nodes:
        node.kill9()
    se_b.stop()
    for node in cluster.nodes:
        node.start(wait=False)
    leader = cluster.wait_leader(30)
    wait_status(leader, WAITING, timeout=15, reason_contains="se-b")
    deadline = time.monotonic() + se_wait_s + 10
    while status_of(leader)["status"] == WAITING:
        cs = status_of(leader)
        assert cs["status"] != WAITING or "se-b" in cs["reason"], cs
        assert time.monotonic() < deadline, f"still waiting (--se-wait-s {se_wait_s}): {cs}"
        time.sleep(0.1)  # polling interval; the loop ends when the status moves on
    w, c, waited = waiting_span(leader)
    assert se_wait_s - 0.5 <= waited <= se_wait_s + 4, (waited, w, c)
    assert "se-b" in c["reason"] and "missing" in c["reason"], c
    wait_status(leader, READY, timeout=20)

    # both back before the next restart: Waiting ends as soon as they reconnect
    se_b.start()
    wait_connected(se_b)
    wait_connected(se_a)
    leader = restart_all(cluster)
    wait_status(leader, READY, timeout=40)
    w, c, waited = waiting_span(leader)
    assert waited < se_wait_s - 2, (waited, w, c)
    assert "every Service Engine connected before is back" in c["reason"], c
    assert "se-a" in c["reason"] and "se-b" in c["reason"], c

    # se-b deleted: not waited for after the next restart
    se_b.stop()
    status, doc = leader.api.delete("/api/serviceengine/" + obj_b["uuid"])
    assert status in (200, 204), (status, doc)
    wait_connected(se_a)
    leader = restart_all(cluster)
    wait_status(leader, READY, timeout=40)
    w, c, waited = waiting_span(leader)
    assert waited < se_wait_s - 2, (waited, w, c)
    assert "se-b" not in c["reason"] and "se-b" not in w["reason"], (w, c)
    assert "se-a" in c["reason"], c


def test_a_node_gone_for_good_takes_its_sessions_with_it(cluster_factory, procs, tmp_path):
    """A follower killed for good: once the leader records it as gone (CONTROLLER_NODE_LEFT)
    the SE's session there no longer counts, so when the SE itself stops, the two nodes
    left record SE_DOWN and the object shows OPER_DOWN (a row left by the dead node kept the
    SE up for ever)."""
    cluster, leader, obj, se = one_se_cluster(cluster_factory, procs, tmp_path)
    follower = next(n for n in cluster.nodes if n is not leader)
    follower.kill9()
    wait_for(lambda: len(events(leader, "CONTROLLER_NODE_LEFT")) >= 1, 20,
             f"{follower.label} recorded as gone")
    se.stop()
    wait_for(lambda: count_events(leader, "SE_DOWN", "se-1") == 1, 20,
             "SE_DOWN with one node gone for good")
    wait_for(lambda: se_object(leader, obj["uuid"])["oper_status"]["state"] == "OPER_DOWN", 10,
             "OPER_DOWN")


def test_a_node_cut_off_and_back_does_not_make_the_others_gone(cluster_factory, procs, tmp_path):
    """A follower paused past the liveness window is recorded as gone. Resumed, it finds
    every peer's last answer too old, but knows the silence was its own (its loop stalled)
    and gives them a new window instead of reporting them gone (and, were such reports
    made, the leader, hearing from them itself, would record none): the only
    CONTROLLER_NODE_LEFT names the paused node, the other nodes' session rows stay (no
    SE_DOWN, no second SE_UP), the SE stays up."""
    cluster, leader, obj, se = one_se_cluster(cluster_factory, procs, tmp_path)
    follower = next(n for n in cluster.nodes if n is not leader)
    follower.pause()
    try:
        wait_for(lambda: len(events(leader, "CONTROLLER_NODE_LEFT")) >= 1, 20,
                 f"{follower.label} recorded as gone")
        # The pause goes on past the resumed node's own liveness window (two election
        # timeouts), so that it does find its peers' last answers too old.
        time.sleep(2.0)
    finally:
        follower.resume()
    wait_for(lambda: len(events(leader, "CONTROLLER_NODE_JOINED")) >= 1, 20,
             f"{follower.label} recorded as back")
    log = follower.stderr_path.read_text(errors="replace")
    assert "peers: this node's loop stalled" in log, "the resumed node saw no stall of its own"
    deadline = time.monotonic() + 3      # its reports went out at once: none is recorded
    while time.monotonic() < deadline:
        left = events(leader, "CONTROLLER_NODE_LEFT")
        assert len(left) == 1 and left[0]["event_details"]["node_name"] == follower.name, left
        time.sleep(0.2)
    assert count_events(leader, "SE_DOWN", "se-1") == 0, events(leader, "SE_DOWN")
    assert count_events(leader, "SE_UP", "se-1") == 1, events(leader, "SE_UP")
    assert se_object(leader, obj["uuid"])["oper_status"]["state"] == "OPER_UP"


def test_a_session_the_leader_dropped_while_its_node_was_cut_off_is_reported_again(
        cluster_factory, procs, tmp_path):
    """A follower paused long enough to be recorded as gone loses its SE session rows in the
    replicated state (store_se_node_left), while the SE, with a heartbeat slower than the
    pause, keeps its session to it. Resumed, the follower finds its session missing from
    the replicated state and reports it again (se_sessions__check_recorded); the SE never
    looks down (no SE_DOWN, no second SE_UP)."""
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    obj, key = register(leader, tmp_path, "se-1")
    kh = known_hosts_from_cli(leader, tmp_path / "known_hosts")
    d = tmp_path / "se-slow"
    d.mkdir()
    # 3 missed 4 s heartbeats: 12 s, longer than the pause below.
    se = ChannelSE(procs, d, key, kh, [n.se_listen for n in cluster.nodes], name="se-1",
                   heartbeat_ms=4000).start()
    wait_connected(se)
    follower = next(n for n in cluster.nodes if n is not leader)
    follower.pause()
    try:
        wait_for(lambda: len(events(leader, "CONTROLLER_NODE_LEFT")) >= 1, 8,
                 f"{follower.label} recorded as gone")
    finally:
        follower.resume()
    wait_for(lambda: "its session here is not in the replicated state"
             in follower.stderr_path.read_text(errors="replace"), 20,
             f"{follower.label} reports its session again")
    log = se.log_path.read_text(errors="replace")
    # the SE's sessions stayed open: it never had to connect again
    assert "connecting again" not in log, log[-2000:]
    assert connected_count(se) == 3, se.status()
    assert count_events(leader, "SE_DOWN", "se-1") == 0, events(leader, "SE_DOWN")
    assert count_events(leader, "SE_UP", "se-1") == 1, events(leader, "SE_UP")
    assert se_object(leader, obj["uuid"])["oper_status"]["state"] == "OPER_UP"
