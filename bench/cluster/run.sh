#!/usr/bin/env bash
# Cluster benchmark: three vigild nodes (failover, config writes vs a 3-member etcd 3.4 with
# the same wrk client, rejoin, leader changes under heavy load). Loopback only; every
# process is stopped by its PID. BENCH_DURATION=S sets the seconds per write row (default
# 10); see bench.py --help for the rest; --update-docs rewrites "## Cluster" in
# docs/benchmarks.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for tool in wrk etcd; do
  command -v "$tool" >/dev/null || { echo "bench/cluster: $tool missing (make deps)" >&2; exit 1; }
done
exec timeout 1800 /usr/bin/python3 "$here/bench.py" "$@"
