"""The fault campaign (`make faults`): N runs of run.py, each with its own seed, and the
report: runs, operations, faults by kind, anomalies, availability, time to the first
acknowledged write after each fault, rejoin time after a healed partition.

    /usr/bin/python3 tests/faults/campaign.py [--runs 20] [--seconds 90] [--seed S]
                                              [--out DIR] [--kinds isolate,partition,...]

Needs root (network namespaces) and the test build's vigild (VIGILD, as the system tests).
Seeds are SEED, SEED+1, ...; SEED defaults to a random one, printed first. One run is
replayed (the same nemesis schedule) with --runs 1 --seed THAT_SEED. Exit status: 0 no
anomaly, 1 an anomaly or a harness error, 2 the test bed cannot be made here.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "system"))

import harness  # noqa: E402
import nemesis  # noqa: E402
import run as run_module  # noqa: E402
import testbed  # noqa: E402


def aggregate(results):
    """The campaign's figures from the runs' result dicts."""
    rep = {"runs": len(results), "passed": sum(r["passed"] for r in results),
           "operations": sum(r.get("operations", 0) for r in results),
           "by_outcome": {}, "faults": {}, "anomalies": [], "errors": [],
           "availability": None, "first_ack_s": {}, "first_ack_after_heal_s": {},
           "rejoin_s": None}
    for r in results:
        for k, v in (r.get("by_outcome") or {}).items():
            rep["by_outcome"][k] = rep["by_outcome"].get(k, 0) + v
        rep["anomalies"] += [f"seed {r['seed']}: {a}" for a in r["anomalies"]]
        rep["errors"] += [f"seed {r['seed']}: {e}" for e in r["errors"]]
    faults = [f for r in results for f in r.get("faults") or []]
    kinds = sorted({fault_label(f) for f in faults})
    for kind in kinds:
        of = [f for f in faults if fault_label(f) == kind]
        rep["faults"][kind] = len(of)
        rep["first_ack_s"][kind] = run_module.stats(f.get("first_ack_s") for f in of)
        rep["first_ack_after_heal_s"][kind] = run_module.stats(
            f.get("first_ack_after_heal_s") for f in of)
    rep["rejoin_s"] = run_module.stats(f.get("rejoin_s") for f in faults if "rejoin_s" in f)
    snap = [f for f in faults if f["kind"] == "kill9-snapshot"]
    rep["snapshot_kills"] = [len(snap), sum(1 for f in snap if f["params"].get("snapshot_seen"))]
    rep["rejoin_missed"] = sum(1 for f in faults if "rejoin_s" in f and f["rejoin_s"] is None)
    avail = [r["availability"] for r in results if r.get("availability") is not None]
    rep["availability"] = run_module.stats(avail)
    if rep["availability"]:     # for a share, the worst run is the lowest
        rep["availability"]["worst"] = min(avail)
    return rep


def fault_label(fault):
    """A fault's kind, and whether it hit the leader of the moment ("kill9/leader")."""
    hit = "leader" if fault.get("leader_before") in fault.get("targets", []) else "follower"
    if fault["kind"] == "netem" and (fault.get("params") or {}).get("all"):
        hit = "all"
    return f"{fault['kind']}/{hit}"


def _fmt(s):
    return "-" if not s else f"{s['median']:.3f} / {s['worst']:.3f} (n={s['n']})"


def render(rep, seeds, seconds):
    lines = [f"fault campaign: {rep['runs']} runs x {seconds} s, seeds {seeds[0]}..{seeds[-1]}",
             f"passed: {rep['passed']}/{rep['runs']}",
             f"operations: {rep['operations']} "
             f"({', '.join(f'{k}={v}' for k, v in sorted(rep['by_outcome'].items()))})",
             f"availability (ops to a node in a connected majority that succeeded), median / "
             f"worst run: {_fmt(rep['availability'])}",
             f"rejoin after a healed partition (s), median / worst: {_fmt(rep['rejoin_s'])}"
             f"; not within 20 s: {rep['rejoin_missed']}",
             f"kill -9 at a new snapshot: {rep['snapshot_kills'][1]} of "
             f"{rep['snapshot_kills'][0]} kill9-snapshot faults saw one come",
             "", f"{'fault':<24} {'count':>5}  first ack after start (s)   first ack after heal (s)"]
    for kind, n in sorted(rep["faults"].items()):
        lines.append(f"{kind:<24} {n:>5}  {_fmt(rep['first_ack_s'][kind]):<26}  "
                     f"{_fmt(rep['first_ack_after_heal_s'][kind])}")
    lines.append("")
    lines.append(f"anomalies: {len(rep['anomalies'])}")
    lines += [f"  {a}" for a in rep["anomalies"][:50]]
    lines.append(f"harness errors: {len(rep['errors'])}")
    lines += [f"  {e}" for e in rep["errors"][:20]]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=str(harness.REPO_ROOT / "build-test" / "faults"))
    ap.add_argument("--snapshot-threshold", type=int, default=None,
                    help="vigild's (hidden) --snapshot-threshold, trailing an eighth of it: "
                         "snapshots, and their installs on lagging nodes, come often")
    ap.add_argument("--kinds", default=None,
                    help="only these nemesis kinds, comma-separated (e.g. isolate,partition)")
    args = ap.parse_args(argv)
    kinds = None
    if args.kinds:
        names = [k.strip() for k in args.kinds.split(",") if k.strip()]
        unknown = [k for k in names if k not in nemesis.KINDS]
        if unknown or not names:
            ap.error(f"--kinds: unknown {unknown}; one of {sorted(nemesis.KINDS)}")
        kinds = {k: nemesis.KINDS[k] for k in names}
    flags = []
    if args.snapshot_threshold:
        flags = ["--snapshot-threshold", str(args.snapshot_threshold),
                 "--snapshot-trailing", str(max(1, args.snapshot_threshold // 8))]
    if not 1 <= args.runs <= 1000 or not 10 <= args.seconds <= 3600:
        ap.error("--runs 1-1000, --seconds 10-3600")
    if not harness.VIGILD.exists():
        print(f"vigild not built: {harness.VIGILD} (run {harness.TEST_BUILD_HINT})",
              file=sys.stderr)
        return 2
    base = args.seed if args.seed is not None else random.randrange(1, 10**6)
    out = Path(args.out) / time.strftime("%Y%m%dT%H%M%S")
    print(f"fault campaign: {args.runs} runs x {args.seconds:.0f} s from seed {base}; "
          f"run dirs under {out}", flush=True)
    results = []
    for i in range(args.runs):
        seed = base + i
        try:
            r = run_module.run_once(seed, args.seconds, out / f"seed-{seed}", kinds=kinds,
                                    extra_flags=flags)
        except testbed.TestbedUnavailable as exc:
            print(f"the namespace test bed is unavailable: {exc}", file=sys.stderr)
            return 2
        r.pop("_history", None)
        r.pop("_final", None)
        results.append(r)
        print(f"run {i + 1}/{args.runs} seed {seed}: "
              f"{'ok' if r['passed'] else 'FAILED'}, {r.get('operations', 0)} ops, "
              f"{len(r.get('faults') or [])} faults, {len(r['anomalies'])} anomalies, "
              f"{len(r['errors'])} errors" + ("" if r["passed"] else
                                             f" (kept in {out / f'seed-{seed}'})"), flush=True)
        for a in (r["anomalies"] + r["errors"])[:5]:
            print(f"    {a[:400]}", flush=True)
    rep = aggregate(results)
    text = render(rep, [base, base + args.runs - 1], args.seconds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.txt").write_text(text + "\n")
    (out / "report.json").write_text(json.dumps(rep, indent=1))
    print("\n" + text + f"\n\nreport: {out / 'report.txt'}")
    return 0 if rep["passed"] == rep["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
