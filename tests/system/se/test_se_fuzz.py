"""A short libFuzzer + ASan/UBSan run of the vigil-se request path (tests/fuzz/se). Longer
runs by hand: docs/hacking.md, "Fuzzing"."""
import glob
import os
import shutil
import subprocess

import pytest

from conftest import REPO

FUZZ_DIR = REPO / "tests" / "fuzz" / "se"


def test_fuzz_http_request_path_short_run(tmp_path):
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (Debian: clang, libclang-rt-14-dev)")
    if not glob.glob("/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a"):
        pytest.skip("clang's libFuzzer runtime is missing (Debian: libclang-rt-14-dev)")
    build = subprocess.run([str(FUZZ_DIR / "build.sh"), str(tmp_path / "out")],
                           capture_output=True, timeout=300)
    assert build.returncode == 0, build.stderr.decode()[-2000:]
    binary = build.stdout.decode().strip().splitlines()[-1]
    corpus = tmp_path / "corpus"
    shutil.copytree(FUZZ_DIR / "corpus", corpus)
    seconds = int(os.environ.get("VIGIL_FUZZ_SECONDS", "20"))
    run = subprocess.run([binary, "-max_total_time=%d" % seconds, "-rss_limit_mb=1024",
                          "-artifact_prefix=%s/" % tmp_path, str(corpus)],
                         capture_output=True, timeout=seconds + 120, cwd=tmp_path)
    crashes = glob.glob(str(tmp_path / "crash-*")) + glob.glob(str(tmp_path / "leak-*"))
    assert run.returncode == 0 and not crashes, run.stderr.decode()[-4000:]
