#!/usr/bin/env bash
# SE channel benchmark: N vigil-se processes against one 3-node vigild cluster (connect,
# config push latency, reconnect after a node's return). Loopback only; every process is
# stopped by its PID. See bench.py --help.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v ssh-keygen >/dev/null || { echo "bench/se_channel: ssh-keygen missing (make deps)" >&2; exit 1; }
# No arguments (make bench): both parts. --scenarios [ARGS]: the seed's scenarios at load
# (scenarios.py) only; any other arguments go to bench.py.
if [ $# -eq 0 ]; then
    timeout 1200 /usr/bin/python3 "$here/bench.py" && exec timeout 900 /usr/bin/python3 "$here/scenarios.py"
elif [ "$1" = --scenarios ]; then
    shift
    exec timeout 900 /usr/bin/python3 "$here/scenarios.py" "$@"
fi
exec timeout 1200 /usr/bin/python3 "$here/bench.py" "$@"
