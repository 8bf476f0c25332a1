#!/usr/bin/python3
"""Paired comparison of two builds of Vigil on this machine: has a change made anything
slower? Builds OLD_REV (release, as `make` builds) in a temporary worktree, then runs the
controller, cluster-writes and data-plane benchmarks with the old and the new binaries
alternately, ROUNDS times (old first in odd rounds, new first in even ones, so that a trend
in the machine's load hits both), and prints per figure the values of every round, the
paired ratios new/old and their median. The new binaries are build/'s (run `make` first).

    bench/compare.py OLD_REV [--rounds 3] [--duration 5] [--only controller,cluster,se]

Each benchmark's own client and reference (etcd, HAProxy) run as in `make bench`; only the
binary under test changes. Prints one line and exits 1 when a benchmark fails."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (figure, the benchmark, a regex on its output whose group 1 is the value, higher_is_better)
FIGURES = [
    ("1 node c1 writes/s", "controller", r"^\| vigild \(1 node\) \| 1 \| (\d+) \|", True),
    ("1 node c64 writes/s", "controller", r"^\| vigild \(1 node\) \| 64 \| (\d+) \|", True),
    ("1 node c64 p99 ms", "controller", r"^\| vigild \(1 node\) \| 64 \| \d+ \| [\d.]+ \| ([\d.]+) \|", False),
    ("3 nodes c1 writes/s", "cluster", r"^\| vigild \(3 nodes\) \| 1 \| (\d+) \|", True),
    ("3 nodes c64 writes/s", "cluster", r"^\| vigild \(3 nodes\) \| 64 \| (\d+) \|", True),
    ("3 nodes c64 p99 ms", "cluster", r"^\| vigild \(3 nodes\) \| 64 \| \d+ \| [\d.]+ \| ([\d.]+) \|", False),
    ("3 nodes via a follower c64 writes/s", "cluster",
     r"^\| vigild \(3 nodes\), via a follower \| 64 \| (\d+) \|", True),
    ("SE http req/s", "se", r"^vigil-se http \(logs on\)\s+([\d.]+)", True),
    ("SE http cpu us/req", "se", r"^vigil-se http \(logs on\)\s+\S+\s+\S+\s+\S+\s+([\d.]+)", False),
    ("SE tcp req/s", "se", r"^vigil-se tcp \(logs on\)\s+([\d.]+)", True),
    ("SE tcp cpu us/req", "se", r"^vigil-se tcp \(logs on\)\s+\S+\s+\S+\s+\S+\s+([\d.]+)", False),
]


def run(cmd, env, what):
    p = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"{what} failed ({p.returncode}): {p.stderr.strip()[-300:]}")
    return p.stdout


def bench(name, build, duration):
    vigild = str(build / "src" / "controller" / "vigild")
    se = str(build / "src" / "se" / "vigil-se")
    if name == "controller":
        return run(["/usr/bin/python3", str(REPO / "bench/controller/bench.py"),
                    "--duration", str(duration)], {"VIGILD": vigild}, "bench/controller")
    if name == "cluster":
        return run(["/usr/bin/python3", str(REPO / "bench/cluster/bench.py"), "--only", "writes",
                    "--rounds", "1", "--duration", str(duration)], {"VIGILD": vigild},
                   "bench/cluster")
    return run(["bash", str(REPO / "bench/se/run.sh")],
               {"VIGIL_SE_BIN": se, "DURATION": str(duration), "IDLE": "1000"}, "bench/se")


def build_old(rev, where):
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(where), rev],
                   check=True)
    subprocess.run(["meson", "setup", str(where / "build")], cwd=where, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", str(where / "build")], check=True, stdout=subprocess.DEVNULL)
    return where / "build"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old_rev")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", default="controller,cluster,se",
                    help="which benchmarks, comma-separated")
    args = ap.parse_args()
    only = [b for b in ("controller", "cluster", "se") if b in args.only.split(",")]
    new = REPO / "build"
    old_dir = Path(tempfile.mkdtemp(prefix="vigil-compare-")) / "old"
    values = {f[0]: {"old": [], "new": []} for f in FIGURES if f[1] in only}
    try:
        old = build_old(args.old_rev, old_dir)
        for r in range(args.rounds):
            order = [("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]
            for name in only:
                for label, build in order:
                    out = bench(name, build, args.duration)
                    for fig, which, rx, _ in FIGURES:
                        if which != name or fig not in values:
                            continue
                        m = re.search(rx, out, re.M)
                        if m is None:
                            raise RuntimeError(f"{fig}: not in bench/{name}'s output")
                        values[fig][label].append(float(m.group(1)))
                    print(f"round {r + 1}: bench/{name} {label} done", file=sys.stderr, flush=True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_dir)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    print(f"| figure ({args.old_rev} -> {rev}) | old per round | new per round | "
          f"new/old per round | median | better is |")
    print("|---|---|---|---|---|---|")
    for fig, _, _, higher in FIGURES:
        if fig not in values:
            continue
        o, n = values[fig]["old"], values[fig]["new"]
        ratios = [b / a if a else float("nan") for a, b in zip(o, n)]
        print(f"| {fig} | {', '.join(f'{v:g}' for v in o)} | {', '.join(f'{v:g}' for v in n)} | "
              f"{', '.join(f'{x:.2f}x' for x in ratios)} | {statistics.median(ratios):.2f}x | "
              f"{'higher' if higher else 'lower'} |")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        print(f"bench/compare: {exc}", file=sys.stderr)
        sys.exit(1)
