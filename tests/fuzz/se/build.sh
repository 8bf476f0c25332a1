#!/usr/bin/env bash
# Builds the vigil-se fuzz target with clang + libFuzzer + ASan + UBSan into OUT (default
# build-fuzz/se). Usage: tests/fuzz/se/build.sh [OUT]; prints the binary's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${1:-$repo/build-fuzz/se}"
mkdir -p "$out"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -D_GNU_SOURCE -I"$repo/src" \
  "$here/fuzz_http_msg.c" "$repo/src/se/http_msg.c" "$repo/src/se/http_hop.c" "$repo/src/se/log_record.c" \
  "$repo/src/common/timeutil.c" -lhttp_parser -o "$out/fuzz_http_msg"
echo "$out/fuzz_http_msg"
