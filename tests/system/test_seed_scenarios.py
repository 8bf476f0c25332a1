"""Issue 4: the seed's controller reboot scenarios (../shared/seed/000_a27b451b6baafc0b.txt)
on three real vigild nodes: which events fire, which statuses the cluster passes through,
in which order and with which reasons. Scenarios 1-5 run once with kill -9 and once with
SIGTERM. A reboot keeps a node down >= 3 election timeouts (cluster_helpers.DOWN_S) and
restarts it with the same data dir.

Run: /usr/bin/python3 -m pytest tests/system/test_seed_scenarios.py
"""

import re
import threading
import time

import pytest

import harness
from cluster_helpers import (ACTIVE, COPYING, DOWN_S, ELECTION_TIMEOUT_S, ERRORS, HA_ACTIVE,
                             HA_COMPROMISED, NOT_RESPONSIVE, READY, RESTORING, WAITING,
                             Poller, assert_idle, assert_legal_history, assert_recovery_order, events,
                             events_of, history, now_ms, parse_time_ms, recovery_after,
                             se_connected, statuses, status_of, stop, stop_many, three_nodes,
                             wait_events, wait_identical, wait_same_events, wait_stable,
                             wait_status)
from harness import healthmonitor_body, wait_until

LEFT = "CONTROLLER_NODE_LEFT"
JOINED = "CONTROLLER_NODE_JOINED"
FAILOVER = "CONTROLLER_LEADER_FAILOVER"
STATUS_CHANGED = "CLUSTER_STATUS_CHANGED"
HOW = pytest.mark.parametrize("how", ["kill9", "term"])


def _start_all(nodes):
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_healthy()


def _presence_events(node, victims, since_ms, timeout=10.0):
    """Wait for one LEFT and one JOINED per victim (by node_name) since since_ms."""
    def ok(evs):
        return all(events_of(evs, LEFT, since_ms, node_name=v.name) and
                   events_of(evs, JOINED, since_ms, node_name=v.name) for v in victims)
    try:
        return wait_events(node, ok, timeout,
                           f"{LEFT} and {JOINED} for {[v.name for v in victims]}")
    except harness.HarnessError as exc:
        got = [(e["event_id"], e["event_details"]) for e in events(node)
               if parse_time_ms(e["report_timestamp"]) >= since_ms]
        raise harness.HarnessError(f"{exc}; events since the reboot: {got}") from None


def _assert_left_then_joined(evs, victim, since_ms, role_left=None):
    left = events_of(evs, LEFT, since_ms, node_name=victim.name)
    joined = events_of(evs, JOINED, since_ms, node_name=victim.name)
    assert len(left) == 1, f"{victim.name}: expected one {LEFT}, got {left}"
    assert len(joined) == 1, f"{victim.name}: expected one {JOINED}, got {joined}"
    assert evs.index(left[0]) < evs.index(joined[0]), f"{JOINED} listed before {LEFT}"
    assert left[0]["report_timestamp"] <= joined[0]["report_timestamp"]
    for e in (left[0], joined[0]):
        assert e["module"] == "CLUSTERMGR"
        d = e["event_details"]
        assert d["ip"] == harness.HOST, d
        assert d["role"] in ("CLUSTER_LEADER", "CLUSTER_FOLLOWER"), d
    if role_left:
        assert left[0]["event_details"]["role"] == role_left, left[0]
    return left[0], joined[0]


def _assert_write_refused(node):
    t0 = time.monotonic()
    status, doc = node.api.post("/api/healthmonitor", healthmonitor_body(f"refused-{now_ms()}"))
    took = time.monotonic() - t0
    assert status == 503 and doc and doc.get("outcome") == "not_applied", (status, doc)
    assert took <= 2 * ELECTION_TIMEOUT_S + 0.5, f"the 503 took {took:.2f}s"


def _assert_writes_work_everywhere(cluster, tag):
    for n in cluster.nodes:
        status, doc = n.api.post("/api/healthmonitor", healthmonitor_body(f"{tag}-{n.id}"))
        assert status == 201, (n.label, status, doc)


# ---------------------------------------------------------------------------
# 1. a follower reboots

@HOW
def test_1_follower_reboot(cluster_factory, how):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    follower = [n for n in cluster.nodes if n is not leader][0]
    others = [n for n in cluster.nodes if n is not follower]
    t0 = now_ms()
    poller = Poller(others, interval=0.05)
    poller.start()
    try:
        stop(follower, how)
        time.sleep(DOWN_S)
        follower.start()
        wait_stable(cluster)
        reads = poller.reads
        wait_until(lambda: poller.reads >= reads + 10, 10, "more polls after the rejoin")
    finally:
        poller.finish()
    assert not poller.failures, (f"{len(poller.failures)} failed polls on the other two nodes "
                                 f"during the follower reboot, e.g. {poller.failures[:5]}")
    assert len(poller.acked) > 20

    evs = _presence_events(leader, [follower], t0)
    _assert_left_then_joined(evs, follower, t0, role_left="CLUSTER_FOLLOWER")
    assert not events_of(evs, FAILOVER, t0), "a follower reboot is no leader failover"

    # The follower caught up with what was written meanwhile.
    wait_identical(cluster.nodes)
    harness.assert_all_present(follower.api, poller.acked)
    # The restarted node sits idle like the others (a spinning loop burns a core).
    assert_idle(cluster.nodes)


# ---------------------------------------------------------------------------
# 2. the leader reboots

@HOW
def test_2_leader_reboot(cluster_factory, how):
    cluster = three_nodes(cluster_factory)
    old = cluster.leader()
    t0 = now_ms()
    stop(old, how)
    t_stop = time.monotonic()
    new = cluster.wait_leader(10)
    assert new is not old
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - t_stop)))
    old.start()
    leader = wait_stable(cluster)
    assert leader is new, f"leader moved again to {leader.label} after {old.label} returned"
    for n in cluster.nodes:
        assert n.runtime()["leader_id"] == new.id

    def failover(evs):
        return events_of(evs, FAILOVER, t0)
    evs = wait_events(new, failover, 10, f"{FAILOVER} after the leader's reboot")
    fo = events_of(evs, FAILOVER, t0)
    assert len(fo) == 1, fo
    assert fo[0]["event_details"] == {"leader_node": new.name, "previous_leader_node": old.name}
    evs = _presence_events(new, [old], t0)
    _assert_left_then_joined(evs, old, t0, role_left="CLUSTER_LEADER")
    _assert_writes_work_everywhere(cluster, "after-leader-reboot")


# ---------------------------------------------------------------------------
# 3. both followers reboot

@HOW
def test_3_both_followers_reboot(cluster_factory, how):
    cluster = three_nodes(cluster_factory)
    old = cluster.leader()
    followers = [n for n in cluster.nodes if n is not old]
    t0 = now_ms()
    stop_many(followers, how)
    t_stop = time.monotonic()

    # The leader steps down and says so; writes are refused before the log.
    wait_status(old, NOT_RESPONSIVE, timeout=5)
    assert old.runtime()["leader_id"] is None
    _assert_write_refused(old)

    time.sleep(max(0.0, DOWN_S - (time.monotonic() - t_stop)))
    _start_all(followers)
    leader = wait_stable(cluster)

    hist = history(leader)
    assert_legal_history(hist, leader.label)
    rec = assert_recovery_order(recovery_after(hist, 0), who=leader.label)
    _assert_reasons(rec)

    # The failover event fires even when the old leader wins again.
    evs = wait_events(leader, lambda evs: events_of(evs, FAILOVER, t0), 10, f"{FAILOVER}")
    fo = events_of(evs, FAILOVER, t0)
    assert len(fo) == 1, fo
    assert fo[0]["event_details"] == {"leader_node": leader.name,
                                      "previous_leader_node": old.name}
    evs = _presence_events(leader, followers, t0)
    for f in followers:
        _assert_left_then_joined(evs, f, t0)
    _assert_writes_work_everywhere(cluster, "after-followers-reboot")


def _assert_reasons(rec):
    """The recovery's reasons name what was observed."""
    by = {}
    for h in rec:
        by.setdefault(h["status"], h["reason"])   # the first pass through each status
    assert re.search(r"node \d+ elected leader in term \d+", by[RESTORING]), by[RESTORING]
    assert re.search(r"committed index \d+", by[WAITING]), by[WAITING]
    assert "Service Engine" in by[COPYING], by[COPYING]
    assert re.search(r"applied index \d+", by[READY]), by[READY]


# ---------------------------------------------------------------------------
# 4. all three reboot

@HOW
def test_4_all_three_reboot(cluster_factory, how):
    cluster = three_nodes(cluster_factory)
    old = cluster.leader()
    acked = {}
    for n in cluster.nodes:
        a, failed = harness.write_many(n.api, [f"all-{n.id}-{i}" for i in range(40)], workers=4)
        assert not failed, failed
        acked.update(a)
    t0 = now_ms()
    stop_many(cluster.nodes, how)
    time.sleep(DOWN_S)
    t_restart = now_ms()
    _start_all(cluster.nodes)
    leader = wait_stable(cluster, timeout=30)

    hist = history(leader)
    assert_legal_history(hist, leader.label)
    rec = assert_recovery_order(recovery_after(hist, 0), who=leader.label)
    _assert_reasons(rec)

    def both(evs):
        return events_of(evs, FAILOVER, t_restart) and events_of(evs, JOINED, t_restart)
    try:
        evs = wait_events(leader, both, 10, f"{FAILOVER} and {JOINED} after the restart")
    except harness.HarnessError as exc:
        got = [(e["event_id"], e["event_details"]) for e in events(leader)
               if parse_time_ms(e["report_timestamp"]) >= t0]
        raise harness.HarnessError(f"{exc}; events since the stop: {got}") from None
    fo = events_of(evs, FAILOVER, t_restart)
    assert len(fo) == 1, fo
    assert fo[0]["event_details"]["leader_node"] == leader.name
    assert fo[0]["event_details"]["previous_leader_node"] == old.name
    if how == "kill9":
        # Nobody alive saw anyone leave: nothing is invented.
        invented = [e for e in events_of(evs, LEFT, t0) if parse_time_ms(e["report_timestamp"]) < t_restart]
        assert not invented, f"{LEFT} recorded though every node was killed at once: {invented}"

    for n in cluster.nodes:
        harness.assert_all_present(n.api, acked)
    wait_identical(cluster.nodes)
    assert_idle(cluster.nodes)


# ---------------------------------------------------------------------------
# 5. Errors: after a full stop only two nodes return

@HOW
def test_5_errors_when_one_node_stays_down(cluster_factory, how):
    cluster = three_nodes(cluster_factory)
    stop_many(cluster.nodes, how)
    time.sleep(DOWN_S)
    back, absent = cluster.nodes[:2], cluster.nodes[2]
    _start_all(back)
    leader = wait_stable(cluster, timeout=30, expect_state=HA_COMPROMISED)

    hist = history(leader)
    assert_legal_history(hist, leader.label)
    rec = assert_recovery_order(recovery_after(hist, 0), errors_expected=True, who=leader.label)
    err = rec[1]
    assert absent.name in err["reason"], f"Errors reason does not name {absent.name}: {err}"
    for n in back:
        assert status_of(n)["state"] == HA_COMPROMISED
        assert status_of(n)["status"] == READY

    absent.start()
    wait_stable(cluster, expect_state=HA_ACTIVE)


# ---------------------------------------------------------------------------
# 6. held conditions

def test_6a_copying_held_while_a_follower_applies_slowly(cluster_factory):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    slow = [n for n in cluster.nodes if n is not leader][0]
    stop(slow, "term")
    acked, failed = harness.write_many(leader.api, [f"held-{i}" for i in range(300)], workers=8)
    assert not failed, list(failed.items())[:3]
    slow.extra_flags += ["--test-apply-delay-ms", "10"]
    slow.start()

    # Watch the leader: while it says Copying, the reason names the slow node; when it
    # says Ready, its own view (same answer) must show the slow node reachable and caught up.
    wait_status(leader, COPYING, timeout=10, reason_contains=slow.name)
    behind_seen = []
    deadline = time.monotonic() + 40
    while True:
        rt = leader.runtime()
        cs = rt["cluster_state"]
        view = next(e for e in rt["node_states"] if e["id"] == slow.id)
        if cs["status"] == READY:
            target = int(re.search(r"applied index (\d+)", cs["reason"]).group(1))
            assert view["state"] == ACTIVE and (view["applied_index"] or 0) >= target, (
                f"leader went Ready ({cs['reason']}) while it saw {slow.name} as {view}: the "
                f"slowed follower (running, catching up) was left out; history "
                f"{[(h['status'], h['time'], h['reason']) for h in rt['status_history'][-4:]]}")
            break
        assert cs["status"] == COPYING, cs
        assert slow.name in cs["reason"], f"Copying reason does not name {slow.name}: {cs}"
        behind_seen.append(view["applied_index"])
        assert time.monotonic() < deadline, f"still copying after 40 s: {cs}"
        time.sleep(0.05)  # polling interval of this observation loop
    assert behind_seen, "Copying was not held at all"
    assert slow.running
    wait_stable(cluster)
    wait_identical(cluster.nodes)


def _own_applied(node):
    # A generous read timeout: the slowed node may be busy applying.
    status, rt = node.api.get("/api/cluster/runtime", timeout=(1.0, 30.0))
    assert status == 200, (status, rt)
    return next(e["applied_index"] for e in rt["node_states"] if e["id"] == rt["node_id"])


def _se_cluster(cluster_factory, tmp_path, se_wait_s):
    cluster = three_nodes(cluster_factory, extra_flags=["--se-wait-s", str(se_wait_s)])
    leader = cluster.leader()
    _, pub = harness.make_ed25519_key(tmp_path / "keys", "se-held")
    status, se = leader.api.post("/api/serviceengine",
                                 harness.serviceengine_body("se-held", pub))
    assert status == 201, (status, se)
    se_connected(leader.api, se["uuid"], leader.id)
    stop_many(cluster.nodes, "kill9")
    time.sleep(DOWN_S)
    _start_all(cluster.nodes)
    return cluster, se


def test_6b_waiting_for_ses_held_until_se_wait_runs_out(cluster_factory, tmp_path):
    cluster, se = _se_cluster(cluster_factory, tmp_path, 3)
    leader = cluster.wait_leader(15)
    wait_status(leader, WAITING, timeout=10, reason_contains="se-held")
    deadline = time.monotonic() + 15
    while True:
        cs = status_of(leader)
        if cs["status"] != WAITING:
            break
        assert "se-held" in cs["reason"], cs
        assert time.monotonic() < deadline, f"still waiting after 15 s (--se-wait-s 3): {cs}"
        time.sleep(0.1)  # polling interval; the loop ends when the status moves on
    wait_stable(cluster)
    hist = history(leader)
    assert_legal_history(hist, leader.label)
    rec = assert_recovery_order(recovery_after(hist, 0), who=leader.label)
    w = next(h for h in rec if h["status"] == WAITING)
    c = next(h for h in rec if h["status"] == COPYING)
    waited = (parse_time_ms(c["time"]) - parse_time_ms(w["time"])) / 1000
    assert 2.9 <= waited <= 6.0, f"Waiting for Service Engines lasted {waited:.2f}s, --se-wait-s 3"
    assert "se-held" in c["reason"], f"the move on does not list the missing SE: {c}"


def test_6b_waiting_for_ses_ends_when_the_se_is_back(cluster_factory, tmp_path):
    cluster, se = _se_cluster(cluster_factory, tmp_path, 30)
    leader = cluster.wait_leader(15)
    wait_status(leader, WAITING, timeout=10, reason_contains="se-held")
    se_connected(leader.api, se["uuid"], leader.id, time_ms=now_ms())
    wait_status(leader, READY, timeout=10)
    rec = recovery_after(history(leader), 0)
    assert_recovery_order(rec, who=leader.label)
    c = next(h for h in rec if h["status"] == COPYING)
    assert "se-held" in c["reason"], c


# ---------------------------------------------------------------------------
# 7. each occurrence once, the same list on every node

def test_7_event_log_once_and_identical_everywhere(cluster_factory):
    cluster = three_nodes(cluster_factory)
    t0 = now_ms()
    leader = cluster.leader()
    follower = [n for n in cluster.nodes if n is not leader][0]
    stop(follower, "kill9")
    time.sleep(DOWN_S)
    follower.start()
    wait_stable(cluster)
    _presence_events(leader, [follower], t0)

    t1 = now_ms()
    stop(leader, "term")
    time.sleep(DOWN_S)
    leader.start()
    new = wait_stable(cluster)
    _presence_events(new, [leader], t1)
    wait_events(new, lambda evs: events_of(evs, FAILOVER, t1), 10, FAILOVER)

    # Every move the current leader made as leader is recorded (wait for the last ones).
    mine = recovery_after(history(new), 0)
    led_from = parse_time_ms(mine[0]["time"])

    def recorded(evs, a, b):
        return [e for e in events_of(evs, STATUS_CHANGED, led_from, **{"from": a["status"]},
                                     to=b["status"]) if e["event_details"]["reason"] == b["reason"]]
    moves = list(zip(mine, mine[1:]))
    try:
        wait_events(new, lambda evs: all(recorded(evs, a, b) for a, b in moves), 10,
                    "every status move of the leader as an event")
    except harness.HarnessError as exc:
        missing = [(a["status"], b["status"], b["reason"]) for a, b in moves
                   if not recorded(events(new), a, b)]
        raise harness.HarnessError(f"{exc}; never recorded: {missing}") from None

    evs = wait_same_events(cluster.nodes)
    uuids = [e["uuid"] for e in evs]
    assert len(uuids) == len(set(uuids)), "an event uuid is listed twice"
    assert len(events_of(evs, LEFT, t0, node_name=follower.name)) == 1
    assert len(events_of(evs, JOINED, t0, node_name=follower.name)) == 1
    assert len(events_of(evs, LEFT, t0, node_name=leader.name)) == 1
    assert len(events_of(evs, JOINED, t0, node_name=leader.name)) == 1
    fo = events_of(evs, FAILOVER, t0)
    assert [e["event_details"] for e in fo] == [{"leader_node": new.name,
                                                 "previous_leader_node": leader.name}]
    keys = [(e["event_id"], e["report_timestamp"], repr(sorted(e["event_details"].items())))
            for e in evs]
    dups = {k for k in keys if keys.count(k) > 1}
    assert not dups, f"occurrences recorded twice: {dups}"
    for a, b in moves:
        n = len(recorded(evs, a, b))
        assert n == 1, f"move {a['status']} -> {b['status']} ({b['reason']}) recorded {n} times"

    # Filters and paging give the same occurrences.
    status, doc = new.api.get("/api/event", params={"event_id": FAILOVER})
    assert status == 200 and doc["results"] == events_of(evs, FAILOVER), doc
    paged = []
    for page in range(1, 1000):
        status, doc = follower.api.get("/api/event", params={"page": page, "page_size": 3})
        assert status == 200, doc
        paged += doc["results"]
        if not doc["results"]:
            break
    assert paged == evs
    since = evs[len(evs) // 2]["report_timestamp"]
    status, doc = leader.api.get("/api/event", params={"since": since, "page_size": 1000})
    assert status == 200
    assert doc["results"] == [e for e in evs if e["report_timestamp"] >= since]
