"""A node's observations on their way to the replicated event log (status/events.c).

Observations a node makes while it has no quorum wait in its outbox; when quorum returns
they are sent to the leader as groups ("observations" commands, store.h), not one raft
entry each, and every one of them is recorded exactly once.
"""

import time

import pytest

import harness
from cluster_helpers import (INACTIVE, events, events_of, now_ms, three_nodes, wait_events,
                             wait_node_state, wait_same_events, wait_stable)
from harness import wait_until
from test_auth import call, login

LOGINS = 120


def applied_index(node):
    runtime = node.runtime()
    return max(s["applied_index"] for s in runtime["node_states"] if s["id"] == node.id)


def logins_recorded(node, source):
    """The USER_LOGIN events recorded for logins from SOURCE (one client address)."""
    status, doc = node.api.get("/api/event", params={"event_id": "USER_LOGIN",
                                                     "page_size": 1000})
    assert status == 200, (status, doc)
    return [e for e in doc["results"] if e["event_details"].get("client_ip") == source]


def test_observations_made_without_quorum_are_recorded_once_in_few_entries(cluster_factory):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    survivor = cluster.followers()[0]
    others = [n for n in cluster.nodes if n is not survivor]
    source = "127.0.7.1"
    wait_until(lambda: applied_index(survivor) >= applied_index(leader), 20,
               "the survivor caught up")
    for n in others:
        n.pause()
    try:
        wait_until(lambda: survivor.runtime()["leader_id"] is None, 20,
                   "the survivor sees no leader")
        before = applied_index(survivor)
        for i in range(LOGINS):
            r, sid, _ = login(survivor, harness.ADMIN_USER, harness.ADMIN_PASSWORD, source=source)
            assert r.status_code == 200 and sid, (i, r.status_code, r.text)
    finally:
        for n in others:
            n.resume()
    wait_until(lambda: len(logins_recorded(survivor, source)) >= LOGINS, 60,
               f"the {LOGINS} logins recorded")
    recorded = logins_recorded(survivor, source)
    assert len(recorded) == LOGINS, len(recorded)
    assert len({e["uuid"] for e in recorded}) == LOGINS
    # One entry each would take LOGINS entries; the groups take a handful (plus the
    # entries of the new term: election, status moves, node records).
    used = applied_index(survivor) - before
    print(f"{LOGINS} observations recorded in {used} raft entries")
    assert used < LOGINS // 2, f"{LOGINS} observations took {used} raft entries"
    # The outbox is empty: a login now is recorded at once, alone.
    r, _, _ = login(survivor, harness.ADMIN_USER, harness.ADMIN_PASSWORD, source=source)
    assert r.status_code == 200, r.text
    wait_until(lambda: len(logins_recorded(survivor, source)) == LOGINS + 1, 20,
               "one more login recorded")


def test_internal_observations_are_checked_command_by_command(cluster_factory):
    """A group holding a command nodes may not send is refused whole, and an admin may not
    send a group at all (only nodes' observations come in groups). This tests the refusals
    only: a node that knows no groups refuses them all; that a node's group is taken is
    shown by the test above."""
    node = cluster_factory(1).nodes[0]
    bad = {"op": "observations", "cmds": [{"op": "node_register", "id": 9},
                                          {"op": "user_put", "name": "mallory"}]}
    status, doc = node.api.post("/api/internal/command", bad)
    assert status == 400, (status, doc)
    good_ops = {"op": "observations", "cmds": [{"op": "se_runtime", "uuid": "x"}]}
    status, doc = node.api.post("/api/internal/command", good_ops)
    assert status == 400 and "not an internal command" in doc["error"], (status, doc)
    status, doc = node.api.post("/api/internal/command", {"op": "observations", "cmds": []})
    assert status == 400, (status, doc)


@pytest.mark.parametrize("role", ["follower", "leader"])
def test_a_paused_node_does_not_report_that_the_others_left(cluster_factory, role):
    """A node stopped (SIGSTOP) past the peers' window and continued: the silence was its
    own, so on resuming it reports no CONTROLLER_NODE_LEFT / JOINED of the others (and a
    paused leader no status changes of its own view) - it used to, from the stale timers
    it ran first (a fault-campaign run, seed 268879, recorded such a leader's
    CLUSTER_STATUS_CHANGED pair twice in one millisecond). Its own leaving and return are
    recorded by the others, once each."""
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    paused = leader if role == "leader" else cluster.followers()[0]
    others = [n for n in cluster.nodes if n is not paused]
    t0 = now_ms()
    paused.pause()
    try:
        wait_node_state(others, paused.id, INACTIVE, timeout=20)
        time.sleep(0.5)   # well past the window the peers give an answer (2 election timeouts)
        seen_before = paused.stderr_path.read_text(errors="replace").count("\n")
    finally:
        paused.resume()
    resumed = now_ms()
    wait_stable(cluster, timeout=30)
    evs = wait_events(others[0], lambda evs: events_of(evs, "CONTROLLER_NODE_JOINED", t0,
                                                       node_name=paused.name), 20,
                      f"node {paused.id}'s return recorded")
    wait_same_events(cluster.nodes, timeout=20)
    evs = events(others[0])
    left = events_of(evs, "CONTROLLER_NODE_LEFT", t0)
    assert [e["event_details"]["node_name"] for e in left] == [paused.name], left
    joined = events_of(evs, "CONTROLLER_NODE_JOINED", t0)
    assert [e["event_details"]["node_name"] for e in joined] == [paused.name], joined
    # the paused node knew the silence was its own: it gave the others a new window and
    # declared none of them unreachable (it used to, at once, from its stale timers)
    after = paused.stderr_path.read_text(errors="replace").split("\n")[seen_before:]
    assert any("peers: this node's loop stalled" in line for line in after), after[:20]
    assert not [line for line in after if "peers: node" in line and "is unreachable" in line], after[:20]
    # nothing the paused node saw of its own stale view after it resumed: every status
    # change recorded since names a leader the others elected
    stale = [e for e in events_of(evs, "CLUSTER_STATUS_CHANGED", resumed - 50)
             if "rejoined" in (e["event_details"].get("reason") or "")
             and any(o.name in e["event_details"]["reason"] for o in others)]
    assert stale == [], stale
