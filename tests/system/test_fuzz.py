"""A short libFuzzer + ASan/UBSan run of each fuzz target (tests/fuzz, built by
tests/fuzz/build.sh): its seed corpus and regression inputs first, then VIGIL_FUZZ_SECONDS
(default 5) of new inputs. A crash fails the test, with the input kept under
build-fuzz/crashes/<target>/ and its bytes in the message. Longer runs by hand:
docs/hacking.md, "Fuzzing"."""
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGETS = ["http_request", "http_response", "se_frame", "objects", "auth"]


def _missing_toolchain():
    if shutil.which("clang") is None:
        return "clang is not installed (Debian: clang, libclang-rt-14-dev)"
    if not glob.glob("/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a"):
        return "clang's libFuzzer runtime is missing (Debian: libclang-rt-14-dev)"
    return None


@pytest.fixture(scope="module")
def fuzz_builds(tmp_path_factory):
    """{target: (binary, seed corpus)}, every target built once for the module."""
    why = _missing_toolchain()
    if why:
        pytest.skip(why)
    out = tmp_path_factory.mktemp("fuzz-build")
    build = subprocess.run([str(REPO / "tests" / "fuzz" / "build.sh"), str(out)],
                           capture_output=True, timeout=600)
    assert build.returncode == 0, build.stderr.decode()[-3000:]
    built = {}
    for line in build.stdout.decode().splitlines():
        name, binary, corpus = line.split()
        built[name] = (binary, corpus)
    return built


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_short_run(fuzz_builds, target, tmp_path):
    assert target in fuzz_builds, "tests/fuzz/build.sh does not build %s" % target
    binary, seeds = fuzz_builds[target]
    corpus = tmp_path / "corpus"
    shutil.copytree(seeds, corpus)
    seconds = int(os.environ.get("VIGIL_FUZZ_SECONDS", "5"))
    run = subprocess.run([binary, "-max_total_time=%d" % seconds, "-rss_limit_mb=1024",
                          "-max_len=8192", "-timeout=10", "-artifact_prefix=%s/" % tmp_path,
                          str(corpus)],
                         capture_output=True, timeout=seconds + 120, cwd=tmp_path)
    found = [Path(p) for p in glob.glob(str(tmp_path / "crash-*")) +
             glob.glob(str(tmp_path / "leak-*")) + glob.glob(str(tmp_path / "timeout-*")) +
             glob.glob(str(tmp_path / "oom-*"))]
    kept = []
    for p in found:
        dest = REPO / "build-fuzz" / "crashes" / target
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest / p.name)
        kept.append("%s: %r" % (dest / p.name, p.read_bytes()[:400]))
    err = run.stderr.decode(errors="replace")
    said = [l for l in err.splitlines() if l.startswith(("http_drive", "  ", "fuzz_")) and
            not l.lstrip().startswith("#")][:30]
    assert run.returncode == 0 and not found, \
        "\n".join(kept + said) + "\n" + err[-3000:]
