"""Fixtures for the system tests on the namespace test bed (tests/system/testbed.py).

Run with: /usr/bin/python3 -m pytest tests/system/netns -v -rs
They need root (network namespaces, veths, a bridge); elsewhere they are skipped with the
reason shown (-rs), never passed.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402
import testbed as testbed_module  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vip_helpers import MEASUREMENTS  # noqa: E402


@pytest.fixture
def testbed(request, tmp_path):
    """A Testbed (no hosts yet) with a ProcessRegistry as `bed.registry`. Teardown stops
    every process by PID and deletes every namespace, also when the test failed."""
    if not harness.VIGILD.exists():
        pytest.fail(f"vigild not built: {harness.VIGILD} is missing (run {harness.TEST_BUILD_HINT})",
                    pytrace=False)
    try:
        bed = testbed_module.Testbed(tmp_path)
    except testbed_module.TestbedUnavailable as exc:
        pytest.skip(f"namespace test bed unavailable: {exc}")
    bed.registry = harness.ProcessRegistry(tmp_path / "logs")
    request.node._vigil_registries = getattr(request.node, "_vigil_registries", [])
    request.node._vigil_registries.append(bed.registry)
    try:
        yield bed
    finally:
        try:
            bed.registry.stop_all()
        finally:
            bed.close()


def pytest_terminal_summary(terminalreporter):
    if not MEASUREMENTS:
        return
    terminalreporter.section("cluster IP measurements")
    for name, seconds in MEASUREMENTS:
        terminalreporter.write_line(f"{name}: {seconds * 1000:.0f} ms")
