"""Issue 12: when a restarted node starts admitting SEs (se_sessions_ready).

After a whole-cluster restart a node's commit index is its snapshot's until the new leader
commits an entry of its own term; its store then lacks what its log holds past the
snapshot (an SE created late, say). A node that admitted SEs then would refuse that SE's
key as unknown and list itself in `nodes_ready`, sending the SE into its backoff (seen in
the 750-SE reconnect storm: 226 SEs refused). The node must wait until it applied the new
leader's record of its term: the applied index it logs when it starts admitting SEs is past
everything committed before the restart.
"""

import re
import socket
import threading

import harness
from harness import serviceengine_body, wait_until
from test_se_channel import FakeSE, create

SNAPSHOT_FLAGS = ["--snapshot-threshold", "64", "--snapshot-trailing", "16"]
ADMITS = re.compile(r"this node admits SEs .*applied index (\d+)")


def _applied_index(node):
    return node.own_state()["applied_index"]


def _admitted_at(node, since):
    text = node.stderr_path.read_text(errors="replace")[since:]
    found = ADMITS.findall(text)
    return int(found[0]) if found else None


def _register_se_everywhere(cluster, tmp_path, name):
    """Creates serviceengine NAME with a new key through the leader and waits until every
    node applied it: (private key path, the applied index it is at)."""
    key_path, public_key = harness.make_ed25519_key(tmp_path / "keys", name)
    create(cluster.leader().api, "serviceengine", serviceengine_body(name, public_key))
    committed = _applied_index(cluster.leader())
    wait_until(lambda: all(_applied_index(n) >= committed for n in cluster.nodes), 20,
               "every node to apply the SE's creation")
    return key_path, committed


def test_a_restarted_node_admits_ses_only_past_what_was_committed(cluster_factory, tmp_path):
    cluster = cluster_factory(3, extra_flags=SNAPSHOT_FLAGS)
    leader = cluster.leader()
    # one entry per write (sequential, so nothing is batched): past the snapshot threshold
    for i in range(100):
        create(leader.api, "healthmonitor", harness.healthmonitor_body(f"hm-{i}"))
    _, committed = _register_se_everywhere(cluster, tmp_path, "se-late")
    for n in cluster.nodes:
        assert list(n.data_dir.rglob("snapshot-*")), f"{n.label} took no snapshot"

    for n in cluster.nodes:
        n.kill9()
    # The other two write slowly (0.1 s per append, one after another): the new leader's first entry of its term
    # commits late, which leaves the window in which only the commit index would mislead.
    probe = cluster.node(2)
    slow = [n for n in cluster.nodes if n is not probe]
    for n in slow:
        n.extra_flags += ["--test-apply-delay-ms", "100"]
    since = len(probe.stderr_path.read_text(errors="replace"))
    for n in cluster.nodes:
        n.start(wait=False)
    for n in cluster.nodes:
        n.wait_healthy(30)

    admitted = wait_until(lambda: _admitted_at(probe, since), 60,
                          f"{probe.label} to admit SEs again")
    assert admitted >= committed, (
        f"{probe.label} started admitting SEs at applied index {admitted}, before index "
        f"{committed} that was committed before the restart (its store could lack se-late)")
    status, doc = probe.api.get("/api/serviceengine")
    assert status == 200 and "se-late" in [o["name"] for o in doc["results"]], doc


def test_an_se_that_connects_before_the_node_caught_up_waits_and_is_admitted(cluster_factory,
                                                                             tmp_path):
    """After a whole-cluster restart, an SE that reaches a node before that node caught up
    with the cluster's log (here: the node is up alone, no quorum) is not refused (which
    would send it into its backoff: 167 of 500 SEs in a reconnect storm); its connection
    waits in the backlog and is admitted once the node caught up."""
    cluster = cluster_factory(3)
    key_path, _ = _register_se_everywhere(cluster, tmp_path, "se-early")
    for n in cluster.nodes:
        n.kill9()
    probe = cluster.node(2)
    since = len(probe.stderr_path.read_text(errors="replace"))
    probe.start(wait=False)
    host, port = probe.se_listen.rsplit(":", 1)

    def listening():
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(listening, 20, f"{probe.label}'s SE port to listen")
    outcome = {}

    def connect():
        try:
            outcome["se"] = FakeSE(probe.se_listen, "se-early", key_path, timeout=60)
        except Exception as e:  # noqa: BLE001 - the outcome is what the test checks
            outcome["error"] = repr(e)
    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    waiting = "new connections wait until it has"
    wait_until(lambda: waiting in probe.stderr_path.read_text(errors="replace")[since:]
               or "error" in outcome, 20, f"{probe.label} to hold the SE's connection back")
    assert "error" not in outcome, f"refused before the node caught up: {outcome['error']}"
    assert "se" not in outcome, "admitted by a node alone, without a leader"
    for n in cluster.nodes:
        if n is not probe:
            n.start(wait=False)
    attempt.join(60)
    assert not attempt.is_alive(), "the SE's connection was never admitted"
    assert "se" in outcome, f"refused: {outcome.get('error')}"
    outcome["se"].close()
    text = probe.stderr_path.read_text(errors="replace")[since:]
    assert "authentication refused" not in text, text[-2000:]
    assert "caught up with the cluster's log: accepting SEs" in text
