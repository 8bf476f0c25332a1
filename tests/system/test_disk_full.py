"""Issue 10: a full disk is an operating condition, not a crash.

Each node's data dir is a small tmpfs (needs root; skipped, saying why, otherwise). A
filler file takes a node's free space while writers on every node keep POSTing pools:
the full node must not crash, writes acknowledged 201 must be on every node at the end,
the nodes must not diverge, and the node must serve again once the filler is removed.
Works in plain HTTP and TLS mode alike (every request goes through the harness's Api)."""

import os
import re
import subprocess
import threading
import time

import pytest

from cluster_helpers import three_nodes, wait_identical
from harness import pool_body, wait_until

TMPFS_MB = 48
WRITE_SECONDS = 12      # each writer phase (also bounded by count)
WRITES_PER_NODE = 4000


def _mount_tmpfs(path, mb):
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(path)],
                          capture_output=True, text=True)


@pytest.fixture
def tmpfs_cluster(cluster_factory):
    """A 3-node cluster, not started, each data dir a TMPFS_MB tmpfs; unmounted at the end
    after every process of the test stopped."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs as a node's data dir")
    cluster = cluster_factory(3, start=False)
    mounted = []
    try:
        for node in cluster.nodes:
            res = _mount_tmpfs(node.data_dir, TMPFS_MB)
            if res.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs at {node.data_dir}: {res.stderr.strip()}")
            mounted.append(node.data_dir)
        yield cluster
    finally:
        cluster_factory.registry.stop_all()
        for path in mounted:
            if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _fill(node, leave_bytes):
    """A filler file on NODE's tmpfs that leaves about LEAVE_BYTES free; returns its path."""
    filler = node.data_dir / "filler"
    size = max(0, _free_bytes(node.data_dir) - leave_bytes)
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 20)
        while size > 0:
            n = min(size, len(chunk))
            f.write(chunk[:n])
            size -= n
    return filler


class Writers:
    """One writer thread per node, POSTing uniquely named pools until a count or a deadline
    (or stop()). Records every answer: 201 acknowledged, else the status and outcome."""

    def __init__(self, nodes, prefix, count=WRITES_PER_NODE, seconds=WRITE_SECONDS):
        self.acked = {}           # name -> uuid
        self.unknown = set()      # may or may not be applied (503 unknown, timeouts)
        self.refusals = []        # (node id, status, error) of not-applied refusals
        self.unknown_why = {}     # a few reasons for unknown outcomes, with counts
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n, prefix, count, seconds),
                                         daemon=True) for n in nodes]

    def _run(self, node, prefix, count, seconds):
        deadline = time.monotonic() + seconds
        for i in range(count):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            name = f"{prefix}-{node.id}-{i:05d}"
            try:
                status, doc = node.api.post("/api/pool", pool_body(name), timeout=(1.0, 10.0))
            except Exception as exc:  # noqa: BLE001 - no answer: it may have been applied
                with self.lock:
                    self.unknown.add(name)
                    why = type(exc).__name__
                    self.unknown_why[why] = self.unknown_why.get(why, 0) + 1
                continue
            with self.lock:
                if status == 201 and doc and doc.get("uuid"):
                    self.acked[name] = doc["uuid"]
                elif (doc or {}).get("outcome") == "not_applied" or status in (400, 409):
                    self.refusals.append((node.id, status, (doc or {}).get("error")))
                else:
                    self.unknown.add(name)
                    why = f"{node.id} {status} {(doc or {}).get('error')}"
                    self.unknown_why[why] = self.unknown_why.get(why, 0) + 1

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self):
        for t in self.threads:
            t.join(timeout=WRITE_SECONDS + 30)
        assert not any(t.is_alive() for t in self.threads), "a writer thread did not finish"


def _log(node):
    return node.stderr_path.read_text(errors="replace") if node.stderr_path.exists() else ""


def _assert_on_every_node(nodes, acked, unknown):
    views = wait_identical(nodes, timeout=40)
    pools = {o["name"]: uid for uid, o in views["pool"].items()}
    missing = [n for n in acked if n not in pools]
    changed = [n for n in acked if n in pools and pools[n] != acked[n]]
    assert not missing, f"{len(missing)} acknowledged pools lost, e.g. {missing[:5]}"
    assert not changed, f"{len(changed)} pools changed uuid, e.g. {changed[:5]}"
    return pools


def _disk_full_run(cluster, full):
    """Writers on every node; FULL's disk filled during the run, freed after it."""
    nodes = cluster.nodes
    for node in nodes:
        assert node.running, f"{node.label} is not running"
    warm = Writers(nodes, "warm", count=100, seconds=10).start()
    warm.join()
    assert warm.acked, f"no write acknowledged on a healthy cluster: {warm.refusals[:3]}"

    writers = Writers(nodes, "full").start()
    try:
        wait_until(lambda: len(writers.acked) >= 200, 20, "200 writes before the disk fills")
        filler = _fill(full, leave_bytes=256 << 10)
        wait_until(lambda: "disk: full" in _log(full), 10, f"{full.label} to log that its disk is full")
        acked_at_full = len(writers.acked)
        # the cluster goes on without the full node's disk: writes keep being acknowledged
        wait_until(lambda: len(writers.acked) >= acked_at_full + 200 or
                   not any(t.is_alive() for t in writers.threads), 30,
                   "writes acknowledged while a node's disk is full")
        assert full.running and full.proc.poll() is None, f"{full.label} exited: {full.stderr_tail()}"
        # reads go on, on the full node too
        status, _ = full.api.get("/api/pool", params={"page_size": 1})
        assert status == 200, f"a read on the full node answered {status}"
    finally:
        writers.join()
    assert len(writers.acked) > acked_at_full, "no write acknowledged after the disk filled"
    assert "double free" not in _log(full) and "AddressSanitizer" not in _log(full)

    filler.unlink()
    wait_until(lambda: "disk: space is back" in _log(full), 10, f"{full.label} to see space return")
    for node in nodes:
        assert node.running and node.proc.poll() is None, f"{node.label} exited: {node.stderr_tail()}"
    cluster.wait_leader(20)
    # the node serves writes again once space is back
    after = Writers([full], "after", count=20, seconds=15).start()
    after.join()
    assert after.acked, f"no write acknowledged on {full.label} after space returned: {after.refusals[:3]}"

    acked = dict(warm.acked, **writers.acked, **after.acked)
    unknown = warm.unknown | writers.unknown | after.unknown
    _assert_on_every_node(nodes, acked, unknown)
    for node in nodes:
        log = _log(node)
        assert "AddressSanitizer" not in log, f"{node.label}: {node.stderr_tail()}"
        assert not re.search(r"damaged raft log|stopping so that the log", log), node.stderr_tail()
    return writers


def test_disk_full_on_the_leader(tmpfs_cluster):
    cluster = tmpfs_cluster
    cluster.start()
    leader = cluster.wait_leader(20)
    writers = _disk_full_run(cluster, leader)
    assert "handing leadership to another voter" in _log(leader)
    # writes refused while no leader had room say so
    for _, status, error in writers.refusals:
        assert status in (400, 409, 503), (status, error)


def test_disk_full_on_a_follower(tmpfs_cluster):
    cluster = tmpfs_cluster
    cluster.start()
    leader = cluster.wait_leader(20)
    follower = next(n for n in cluster.nodes if n is not leader)
    _disk_full_run(cluster, follower)


def test_forwarded_write_is_acknowledged_only_for_its_own_entry(cluster_factory):
    """With --test-wrong-answer-index the leader names the entry before the write's own: a
    follower relaying that answer must not say 201 (that entry is another write)."""
    cluster = three_nodes(cluster_factory, extra_flags=["--test-wrong-answer-index"])
    leader = cluster.wait_leader(20)
    follower = next(n for n in cluster.nodes if n is not leader)
    status, doc = leader.api.post("/api/pool", pool_body("relay-first"))
    assert status == 201, (status, doc)     # the leader answers its own writes itself
    status, doc = follower.api.post("/api/pool", pool_body("relay-second"))
    assert status == 503 and (doc or {}).get("outcome") == "unknown", (status, doc)
    # the write itself was committed: it shows up everywhere, so "unknown" was the truth
    wait_until(lambda: any(o.get("name") == "relay-second" for o in follower.api.list_all("pool")),
               10, "the relayed write to be applied")
