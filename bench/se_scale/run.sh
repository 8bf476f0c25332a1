#!/usr/bin/env bash
# SE scale benchmark: 100 .. 1000 vigil-se processes against one 3-node vigild cluster
# (connect, controllers' CPU and RSS at rest, the reconnect storm after a whole-cluster
# restart). Loopback only; every process is stopped by its PID. See
# bench/se_channel/scale.py --help.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v ssh-keygen >/dev/null || { echo "bench/se_scale: ssh-keygen missing (make deps)" >&2; exit 1; }
exec timeout 3600 nice /usr/bin/python3 "$here/../se_channel/scale.py" "$@"
