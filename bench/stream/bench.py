#!/usr/bin/python3
"""Live-stream benchmark: do open streams slow the writes down?

A 3-node vigild cluster on 127.0.0.1 (TLS on, the defaults; started and stopped by PID
through tests/system/harness.py, so it runs the test build's vigild, whose knobs only make
Argon2 fast for the harness's Basic auth). Acknowledged writes/s (POST /api/healthmonitor
to the leader from THREADS client threads, DURATION seconds per phase), their p50/p99
latency and the leader's CPU time per 1000 writes (utime + stime: what the streams cost
the node, less at the mercy of a shared machine than the rate), in ROUNDS rounds of two
phases each:
  - no stream open;
  - 200 idle streams on the leader (a snapshot every second each; one client thread
    drains them all) plus one client that never reads (its kernel buffers fill, then its
    1 MiB stream buffer, and it is dropped).
The phases alternate so that a busy neighbour hurts both alike; the medians are printed,
not asserted.

usage: bench.py [--duration S] [--threads N] [--streams N] [--rounds N]
"""

import argparse
import os
import selectors
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "system"))

import harness  # noqa: E402
from stream_helpers import RawStream  # noqa: E402


def cpu_s(pid):
    """utime + stime of PID, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_phase(node, duration, threads, tag):
    """Writes for DURATION s from THREADS threads; returns (writes/s, p50 ms, p99 ms,
    leader CPU ms per 1000 writes)."""
    stop = threading.Event()
    lat = []
    lock = threading.Lock()

    def run(tno):
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            status, _ = node.api.post("/api/healthmonitor",
                                      harness.healthmonitor_body(f"{tag}-{tno}-{i}"))
            if status == 201:
                with lock:
                    lat.append(time.monotonic() - t0)
            i += 1

    workers = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    cpu0 = cpu_s(node.pid)
    t_start = time.monotonic()
    for w in workers:
        w.start()
    time.sleep(duration)
    stop.set()
    for w in workers:
        w.join(30)
    elapsed = time.monotonic() - t_start
    cpu = cpu_s(node.pid) - cpu0
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    return (len(lat) / elapsed, pct(0.50), pct(0.99),
            cpu * 1e6 / len(lat) if lat else float("nan"))


class Drain(threading.Thread):
    """Reads (and discards) everything the idle streams are sent, in one thread."""

    def __init__(self, raws):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        for r in raws:
            r.sock.setblocking(False)
            self.sel.register(r.sock, selectors.EVENT_READ)
        self.stop = threading.Event()
        self.bytes = 0

    def run(self):
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.2):
                try:
                    data = key.fileobj.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(key.fileobj)
                self.bytes += len(data)


def with_streams(leader, args, tag):
    """One phase with ARGS.streams idle streams and one never-reading client on LEADER.
    Returns (the phase's figures, bytes the idle streams got, whether the node dropped
    the never-reading client)."""
    raws = [RawStream(leader, timeout=60) for _ in range(args.streams)]
    assert all(r.status == 200 for r in raws), "a stream was refused"
    stuck = RawStream(leader, rcvbuf=4096, timeout=60)
    drain = Drain(raws)
    drain.start()
    drops_before = leader.stderr_path.read_text().count("it does not read")
    row = write_phase(leader, args.duration, args.threads, tag)
    drain.stop.set()
    drain.join(5)
    dropped = leader.stderr_path.read_text().count("it does not read") > drops_before
    for r in raws + [stuck]:
        r.close()
    # the node notices the closed streams at its next snapshot
    harness.wait_until(lambda: leader.api.get("/api/cluster/runtime")[0] == 200, 10, "the leader")
    time.sleep(2)
    return row, drain.bytes, dropped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="vigil-bench-stream-"))
    registry = harness.ProcessRegistry(base / "logs")
    without, with_, got, drops = [], [], 0, 0
    try:
        cluster = harness.Cluster(registry, base, n=3).start()
        leader = cluster.leader()
        write_phase(leader, 2, args.threads, "warm")
        for rnd in range(args.rounds):
            without.append(write_phase(leader, args.duration, args.threads, f"a{rnd}"))
            row, n, dropped = with_streams(leader, args, f"b{rnd}")
            with_.append(row)
            got += n
            drops += dropped
    finally:
        registry.stop_all()
    print(f"writes to the leader of a 3-node TLS cluster, {args.threads} client threads, "
          f"{args.duration:.0f} s per phase, median of {args.rounds} alternating rounds "
          f"(each round's figures in brackets)")
    print(f"{'streams open':28} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/1000 writes':>19}")
    for name, rows in (("none", without), (f"{args.streams} idle + 1 never reading", with_)):
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"{name:28} {med[0]:9.0f} {med[1]:8.1f} {med[2]:8.1f} {med[3]:19.0f}   "
              f"[{', '.join(f'{r[0]:.0f}/s' for r in rows)}]")
    print(f"idle streams received {got / 1e6:.1f} MB in all; the never-reading client was "
          f"dropped in {drops} of {args.rounds} rounds (else its kernel buffers still held "
          f"what it was sent)")


if __name__ == "__main__":
    main()
