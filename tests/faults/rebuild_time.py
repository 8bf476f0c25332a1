"""How long `vigild --rebuild` takes with N objects in the store (docs/reliability.md):
three nodes on 127.0.0.1 (TLS, the test build), N healthmonitors written, a follower
stopped, its raft log damaged, then started with --rebuild; prints the time from that
start to its "rebuild: done" line (the leader's snapshot installed and applied) as the
node logs it, and the wall time until it lists every object.

    VIGILD=build-test/src/controller/vigild /usr/bin/python3 tests/faults/rebuild_time.py 10000
"""

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "system"))

import harness  # noqa: E402
from harness import wait_until, write_many  # noqa: E402

CLOSED_SEGMENT = re.compile(r"\d{16}-\d{16}")


def damage(node):
    segs = [p for p in (node.data_dir / "raft").iterdir() if CLOSED_SEGMENT.fullmatch(p.name)]
    seg = max(segs, key=lambda p: p.stat().st_size)
    data = bytearray(seg.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xA5
    seg.write_bytes(bytes(data))


def count(node):
    """Healthmonitors NODE lists (0 while it answers 503: not caught up yet)."""
    try:
        return len(node.api.list_all("healthmonitor"))
    except harness.HarnessError:
        return 0


def main(n):
    base = Path(tempfile.mkdtemp(prefix="vigil-rebuild-"))
    registry = harness.ProcessRegistry(base / "logs")
    try:
        cluster = harness.Cluster(registry, base / "data", n=3).start()
        leader = cluster.wait_leader()
        acked, failed = write_many(leader.api, [f"hm-{i}" for i in range(n)], workers=16)
        assert not failed, list(failed.items())[:3]
        victim = next(x for x in cluster.nodes if x is not leader)
        wait_until(lambda: count(victim) == n, 120.0, "replication")
        victim.term()
        damage(victim)
        victim.extra_flags.append("--rebuild")
        t0 = time.monotonic()
        victim.start(timeout=60.0)
        done = wait_until(lambda: re.search(r"rebuild: done: .* in (\d+) ms",
                                            victim.stderr_path.read_text(errors="replace")),
                          300.0, "the rebuild to finish")
        wait_until(lambda: count(victim) == n, 120.0, "every object")
        for line in victim.stderr_path.read_text(errors="replace").splitlines()[-400:]:
            if re.search(r"rebuild|snapshot|role|copying|Ready", line):
                print("   ", line[:200])
        print(f"{n} objects: rebuild done {done.group(1)} ms after start (vigild's own "
              f"measure); every object listed {time.monotonic() - t0:.2f} s after start")
    finally:
        registry.stop_all()
        if len(sys.argv) <= 2:     # a second argument keeps the run's dir (logs)
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
