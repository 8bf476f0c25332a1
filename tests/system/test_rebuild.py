"""Issue 15 item 5: `vigild --rebuild` (contract, "vigild"). A node whose raft state is
damaged refuses to start and its one line points at --rebuild; started with it, it moves the
damaged state to DIR/damaged-<time>/ (kept), rejoins with its identity, takes the leader's
state (a snapshot: the leader's log is compacted here), reports it (an event, its log) and
serves as a member again. With no leader with quorum to answer it refuses and touches
nothing, so a minority's state never becomes the cluster's.

Run: /usr/bin/python3 -m pytest tests/system/test_rebuild.py
"""

import re
import time

import harness
from cluster_helpers import events, three_nodes, wait_identical, wait_stable
from harness import healthmonitor_body, tree_digest, wait_until, write_many

# Snapshots early, so that the leader's log no longer holds what the rebuilt node needs.
SNAPSHOT_FLAGS = ["--snapshot-threshold", "64", "--snapshot-trailing", "16"]
CLOSED_SEGMENT = re.compile(r"\d{16}-\d{16}")


def flip_middle(path, length=64):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(len(data), mid + length)):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def damage_raft_log(node):
    """Flips bytes in the middle of the node's largest closed segment; returns its path."""
    segs = [p for p in (node.data_dir / "raft").iterdir() if CLOSED_SEGMENT.fullmatch(p.name)]
    assert segs, f"no closed segment in {node.data_dir / 'raft'}"
    seg = max(segs, key=lambda p: p.stat().st_size)
    flip_middle(seg)
    return seg


def refusal_line(registry, node, extra=()):
    """Runs the node's command line (plus EXTRA) to its exit: (status, last stderr line)."""
    rc, _, err = registry.run_once(list(node.args()) + list(extra), timeout=30.0)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return rc, lines[-1] if lines else ""


def names(node):
    """The healthmonitor names NODE lists (none while it cannot authenticate yet: a 503)."""
    try:
        return {o["name"] for o in node.api.list_all("healthmonitor")}
    except harness.HarnessError as exc:
        if "503" not in str(exc):
            raise
        return set()


def test_a_damaged_node_is_refused_then_rebuilt_from_the_leader(cluster_factory):
    cluster = three_nodes(cluster_factory, extra_flags=SNAPSHOT_FLAGS)
    leader = cluster.leader()
    acked, failed = write_many(leader.api, [f"before-{i}" for i in range(400)], workers=8)
    assert not failed, list(failed.items())[:3]
    victim = next(n for n in cluster.nodes if n is not leader)
    wait_identical(cluster.nodes)
    assert victim.term() == 0
    # more writes while it is down: it must get them from the leader too
    acked2, failed = write_many(leader.api, [f"while-down-{i}" for i in range(100)], workers=8)
    assert not failed
    seg = damage_raft_log(victim)

    rc, line = refusal_line(cluster_factory.registry, victim)
    assert rc == 2, (rc, line)
    assert "--rebuild" in line and "damaged" in line, line

    victim.extra_flags.append("--rebuild")
    try:
        victim.start()
    finally:
        victim.extra_flags.remove("--rebuild")
    moved = list(victim.data_dir.glob("damaged-*/raft"))
    assert len(moved) == 1, list(victim.data_dir.iterdir())
    assert (moved[0] / seg.name).exists(), "the damaged segment was not kept"
    assert (victim.data_dir / "node.json").exists(), "the identity was not kept"

    want = set(acked) | set(acked2)
    wait_until(lambda: want <= names(victim), 30.0, "the rebuilt node to hold every object")
    wait_until(lambda: "rebuild: done" in victim.stderr_path.read_text(errors="replace"), 20.0,
               "the rebuilt node to log that it caught up")
    rebuilt = wait_until(lambda: [e for e in events(leader) if e["event_id"] ==
                                  "CONTROLLER_NODE_REBUILT"], 20.0, "the rebuild's event")
    assert len(rebuilt) == 1 and rebuilt[0]["event_details"]["node_name"] == victim.name, rebuilt
    assert rebuilt[0]["event_details"]["moved_to"] == str(moved[0].parent), rebuilt

    # a member again: its writes are committed and it is in the cluster
    status, doc = victim.api.post("/api/healthmonitor", healthmonitor_body("after-rebuild"))
    assert status == 201, (status, doc)
    wait_stable(cluster)
    wait_identical(cluster.nodes)
    rt = victim.runtime()
    assert rt["leader_id"] == cluster.leader().id and rt["term"] >= 1, rt


def test_a_rebuild_without_a_leader_with_quorum_is_refused_and_touches_nothing(cluster_factory):
    cluster = three_nodes(cluster_factory, extra_flags=SNAPSHOT_FLAGS)
    leader = cluster.leader()
    acked, failed = write_many(leader.api, [f"obj-{i}" for i in range(150)], workers=8)
    assert not failed
    wait_identical(cluster.nodes)
    victim = next(n for n in cluster.nodes if n is not leader)
    for n in cluster.nodes:
        assert n.term() == 0
    damage_raft_log(victim)
    before = tree_digest(victim.data_dir)

    rc, line = refusal_line(cluster_factory.registry, victim, ["--rebuild"])
    assert rc == 2, (rc, line)
    assert "--rebuild refused" in line and "no leader with quorum" in line, line
    assert tree_digest(victim.data_dir) == before, "a refused rebuild changed DIR"
    assert not list(victim.data_dir.glob("damaged-*"))

    # one other node up: still no quorum, still refused
    other = next(n for n in cluster.nodes if n is not victim)
    other.start()
    rc, line = refusal_line(cluster_factory.registry, victim, ["--rebuild"])
    assert rc == 2 and "--rebuild refused" in line, (rc, line)
    assert tree_digest(victim.data_dir) == before


def test_a_rebuild_that_installs_an_older_snapshot_than_it_had_is_not_held_30_s(cluster_factory):
    """The leader kept the old incarnation's match index; the snapshot it sends is older than
    that (no writes since the node stopped), so libraft 0.15 ignores the rebuilt node's answer
    until its install-snapshot timeout: 30 s, 3 s while a peer reports a rebuild."""
    cluster = three_nodes(cluster_factory, extra_flags=SNAPSHOT_FLAGS)
    leader = cluster.leader()
    acked, failed = write_many(leader.api, [f"obj-{i}" for i in range(300)], workers=8)
    assert not failed
    victim = next(n for n in cluster.nodes if n is not leader)
    wait_identical(cluster.nodes)
    assert victim.term() == 0
    damage_raft_log(victim)
    victim.extra_flags.append("--rebuild")
    try:
        started = time.monotonic()
        victim.start()
    finally:
        victim.extra_flags.remove("--rebuild")
    wait_until(lambda: set(acked) <= names(victim), 20.0, "the rebuilt node to hold every object")
    took = time.monotonic() - started
    print(f"measured: rebuild with an older snapshot: {took * 1000:.0f} ms")
    assert took < 12.0, f"the rebuilt node caught up {took:.1f} s after its start"
