#!/usr/bin/env bash
# Builds Vigil's libFuzzer targets with clang + ASan + UBSan into OUT (default build-fuzz).
# Usage: tests/fuzz/build.sh [OUT [TARGET...]] (no TARGET: all); prints one line per target,
# "NAME BINARY CORPUS" (CORPUS: its seed corpus in the source tree). docs/hacking.md, "Fuzzing".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/build-fuzz}"
shift || true
http="src/se/http_msg.c src/se/http_hop.c src/se/http_chunked.c src/se/log_record.c src/common/timeutil.c"
# NAME|AREA (tests/fuzz/AREA)|SOURCES (relative to the repository)|LIBRARIES
targets=(
  "http_request|se|tests/fuzz/se/fuzz_http_msg.c tests/fuzz/se/http_drive.c tests/fuzz/se/http_ref.c $http|-lhttp_parser"
  "http_response|se|tests/fuzz/se/fuzz_http_response.c tests/fuzz/se/http_drive.c tests/fuzz/se/http_ref.c $http|-lhttp_parser"
  "se_frame|common|tests/fuzz/common/fuzz_se_frame.c src/common/se_frame.c src/common/buf.c src/common/vlog.c src/common/timeutil.c|-ljansson"
  "objects|common|tests/fuzz/common/fuzz_objects.c src/common/objects.c|-ljansson -lsodium"
  "auth|auth|tests/fuzz/auth/fuzz_auth.c src/controller/auth/auth_parse.c|-ljansson -lsodium"
)
want=" $* "
mkdir -p "$out"
for t in "${targets[@]}"; do
  IFS='|' read -r name area sources libs <<<"$t"
  if [ $# -gt 0 ] && [[ "$want" != *" $name "* ]]; then
    continue
  fi
  srcs=()
  for f in $sources; do srcs+=("$repo/$f"); done
  # shellcheck disable=SC2086
  clang -g -O1 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -D_GNU_SOURCE -I"$repo/src" -I"$repo/tests/fuzz/$area" \
    "${srcs[@]}" $libs -o "$out/fuzz_$name"
  echo "$name $out/fuzz_$name $repo/tests/fuzz/$area/corpus/$name"
done
