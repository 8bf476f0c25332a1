#!/usr/bin/env bash
# Live-stream benchmark: write rate with and without 200 idle streams and one client that
# never reads (bench.py). Runs the test build's vigild (the harness's Basic auth wants its
# fast-Argon2 knob): `make test-build` first, or set VIGILD.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export VIGILD="${VIGILD:-$here/../../build-test/src/controller/vigild}"
[ -x "$VIGILD" ] || { echo "bench/stream: $VIGILD missing (make test-build)" >&2; exit 1; }
exec /usr/bin/python3 "$here/bench.py" "$@"
