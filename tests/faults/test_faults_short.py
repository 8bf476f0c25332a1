"""The short version of the fault campaign that `make test` runs (`make faults` runs the
long one): two runs of FAULTS_SHORT_SECONDS (30) on the namespace test bed, each with a
new seed (printed, and named in a failure: replay one with
`tests/faults/campaign.py --runs 1 --seed SEED --seconds 30`). Skipped, with the reason,
when namespaces cannot be made. Each run's history is then altered by hand to check that
the checkers, wired as a run wires them, see what they must.

Run: /usr/bin/python3 -m pytest tests/faults/test_faults_short.py -v -rs
"""

import copy
import os
import random

import pytest

import checks
import harness
import run as run_module
import testbed

SECONDS = float(os.environ.get("FAULTS_SHORT_SECONDS", "30"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if not harness.VIGILD.exists():
        pytest.fail(f"vigild not built: {harness.VIGILD} is missing "
                    f"(run {harness.TEST_BUILD_HINT})", pytrace=False)
    base = random.randrange(1, 10**6)
    out = []
    for seed in (base, base + 1):
        try:
            out.append(run_module.run_once(seed, SECONDS, tmp_path_factory.mktemp(f"seed{seed}")))
        except testbed.TestbedUnavailable as exc:
            pytest.skip(f"namespace test bed unavailable: {exc}")
    return out


@pytest.mark.parametrize("which", [0, 1])
def test_short_fault_run_has_no_anomaly(runs, which):
    r = runs[which]
    print(f"seed {r['seed']}: {r.get('operations')} operations, faults "
          f"{[f['kind'] for f in r.get('faults') or []]}, availability {r.get('availability')}")
    assert not r["errors"], f"seed {r['seed']}: harness errors: {r['errors']}"
    assert not r["anomalies"], f"seed {r['seed']}: anomalies: {r['anomalies']}"
    assert r["faults"], f"seed {r['seed']}: no fault was applied"
    assert r["vip_held_samples"] > 10, f"seed {r['seed']}: the cluster IP was never seen held"
    ok = r["by_outcome"]
    assert ok.get("create:ok", 0) > 20 and ok.get("write:ok", 0) > 20 and \
        ok.get("read:ok", 0) > 20, f"seed {r['seed']}: too few operations: {ok}"


def test_checkers_see_tampered_histories(runs):
    """The real history and final state of the first run, changed: an acknowledged create
    missing on one node, a stored create answered not_applied, a consistent read made
    stale, an event missing on one node."""
    r = runs[0]
    history, (pools, events) = r["_history"], r["_final"]
    keys = sorted({op["key"] for op in history if op["f"] == "write"})
    initial = {k: 1 for k in keys}
    assert checks.check_set(history, pools) == []
    acked = next(op for op in history if op["f"] == "create" and op["outcome"] == "ok")
    lost = copy.deepcopy(pools)
    del lost[2][acked["key"]]
    assert any(acked["key"] in a for a in checks.check_set(history, lost))
    refused = [dict(op, outcome="fail") if op is acked else op for op in history]
    assert any("not_applied" in a for a in checks.check_set(refused, pools))

    assert checks.check_linearizable(history, keys, initial) == []
    stale = copy.deepcopy(history)
    last = max((op for op in stale if op["f"] == "write" and op["outcome"] == "ok"),
               key=lambda op: op["complete"])
    stale.append(dict(last, f="read", value=1, invoke=last["complete"] + 100,
                      complete=last["complete"] + 101, outcome="ok"))
    assert checks.check_linearizable(stale, [last["key"]], initial)

    assert checks.check_events(events) == []
    shuffled = copy.deepcopy(events)
    shuffled[3] = shuffled[3][:-1]
    assert checks.check_events(shuffled)
