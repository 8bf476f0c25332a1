#!/bin/bash
# build_deb.sh OUT_DIR: builds the Debian package from the files git tracks in this tree
# (committed or not, as they are now) in a copy under OUT_DIR/src, with dpkg-buildpackage
# (binary only, unsigned), then checks it with lintian when lintian is installed. Prints the
# .deb's path as its last line. `make deb` runs it with OUT_DIR build-deb.
set -euo pipefail
out=$(mkdir -p "$1" && cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$out/src" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$out/src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | \
    xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' | \
    tar --null -T - -cf -) | tar -xf - -C "$out/src"
# The web UI is built from the npm packages `make deps` installed (npm ci, pinned by
# ui/package-lock.json); the package build runs offline, so it takes that copy.
[ -d "$root/ui/node_modules" ] || { echo "build_deb.sh: ui/node_modules is missing: run make deps" >&2; exit 1; }
cp -a "$root/ui/node_modules" "$out/src/ui/"
cd "$out/src"
DEB_BUILD_OPTIONS="nocheck parallel=${VIGIL_DEB_JOBS:-2}" \
    dpkg-buildpackage -b -us -uc --no-pre-clean >"$out/build.log" 2>&1 || {
    tail -40 "$out/build.log" >&2
    echo "build_deb.sh: dpkg-buildpackage failed (all of it in $out/build.log)" >&2
    exit 1
}
deb=$(ls "$out"/vigil_*.deb)
if command -v lintian >/dev/null; then
    lintian --allow-root --fail-on error,warning --display-info "$deb" >"$out/lintian.log" 2>&1 || {
        cat "$out/lintian.log" >&2
        echo "build_deb.sh: lintian found problems in $deb" >&2
        exit 1
    }
fi
echo "$deb"
