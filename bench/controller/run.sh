#!/usr/bin/env bash
# Controller benchmark: vigild vs a one-member etcd 3.4, same wrk client.
# BENCH_DURATION=S sets the seconds per row (default 10); pass --update-docs to rewrite
# the "## Controller" section of docs/benchmarks.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for tool in wrk etcd; do
  command -v "$tool" >/dev/null || { echo "bench/controller: $tool missing (make deps)" >&2; exit 1; }
done
exec /usr/bin/python3 "$here/bench.py" "$@"
