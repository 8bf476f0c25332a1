#!/usr/bin/env bash
# Runs every bench/*/run.sh that exists (without arguments) and prints its output; fails if any fails.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0
found=0
for script in "$here"/*/run.sh; do
  [ -f "$script" ] || continue
  found=1
  name="$(basename "$(dirname "$script")")"
  echo "=== bench/$name ==="
  if ! bash "$script"; then
    echo "=== bench/$name FAILED ===" >&2
    status=1
  fi
  echo
done
[ "$found" = 1 ] || echo "no bench/*/run.sh found"
exit "$status"
