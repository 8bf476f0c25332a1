"""The benchmarks (`make bench`) stay out of `make test`, but a shortest run of each is here,
so they cannot rot: each script runs to the end and prints its table. This checks that
they work, never how fast anything is (the figures of a 1-second run on a busy machine
mean nothing; docs/benchmarks.md holds the real runs).

Run: /usr/bin/python3 -m pytest tests/system/test_bench_smoke.py
"""

import os
import re
import shutil
import subprocess

import pytest

import harness

BENCH = harness.REPO_ROOT / "bench"


def run(argv, env=None, timeout=300):
    proc = subprocess.run([str(a) for a in argv], env=dict(os.environ, **(env or {})),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (make deps installs them)")


def test_stream_bench_runs():
    out = run([BENCH / "stream" / "run.sh", "--duration", "1", "--streams", "5"],
              env={"VIGILD": str(harness.VIGILD)})
    assert "idle + 1 never reading" in out and "CPU ms" in out, out[-2000:]


def test_controller_bench_runs():
    need("wrk", "etcd")
    out = run([BENCH / "controller" / "run.sh"], env={"BENCH_DURATION": "1"})
    assert "| vigild" in out and "| etcd" in out, out[-2000:]


def test_cluster_bench_runs():
    need("wrk", "etcd")
    out = run([BENCH / "cluster" / "run.sh", "--only", "writes,failover", "--rounds", "1",
               "--failovers", "1", "--duration", "1"])
    assert "vigild (3 nodes)" in out and "etcd 3.4 (3 members)" in out, out[-2000:]


def test_se_bench_runs():
    need("wrk", "haproxy", "nginx", "taskset")
    out = run([BENCH / "se" / "run.sh"], env={"DURATION": "1", "IDLE": "100"})
    assert "vigil-se http (logs on)" in out and "haproxy tcp" in out, out[-2000:]


def test_se_channel_bench_runs():
    need("ssh-keygen")
    out = run([BENCH / "se_channel" / "run.sh", "--ses", "2", "--changes", "2",
               "--reconnects", "1"])
    assert "connect: all 2 SEs CONNECTED" in out and "reconnect:" in out, out[-2000:]


def test_se_scale_bench_runs():
    need("ssh-keygen")
    out = run([BENCH / "se_scale" / "run.sh", "--counts", "3", "--rest", "2", "--down", "1",
               "--deadline", "30"], timeout=60)
    assert re.search(r"\| 3 \| [\d.]+ s \| [\d.]+ s \| .* \| 0 / 0 \| none \|", out), out[-2000:]


def test_se_channel_scenarios_bench_runs():
    need("ssh-keygen")
    need("wrk")
    need("nginx")
    out = run([BENCH / "se_channel" / "run.sh", "--scenarios", "--window", "6",
               "--connections", "4", "--only", "follower"])
    assert re.search(r"\| follower \| \d+ \| 0 \| CONNECTED", out), out[-2000:]
