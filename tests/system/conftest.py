"""pytest fixtures for the system tests. Processes are started only through harness.py.

Run with: /usr/bin/python3 -m pytest tests/system
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def pytest_configure(config):
    """Run a private copy of vigild, so a rebuild during the run cannot mix two binaries."""
    if harness.VIGILD.exists() and not os.environ.get("VIGIL_NO_BINARY_COPY"):
        copy_dir = Path(tempfile.mkdtemp(prefix="vigil-bin-"))
        copy = copy_dir / "vigild"
        shutil.copy2(harness.VIGILD, copy)
        config._vigil_binary_copy = copy_dir
        harness.VIGILD_SOURCE = harness.VIGILD
        harness.VIGILD = copy


def pytest_unconfigure(config):
    copy_dir = getattr(config, "_vigil_binary_copy", None)
    if copy_dir:
        shutil.rmtree(copy_dir, ignore_errors=True)


def pytest_report_header(config):
    return f"vigild: {harness.VIGILD} (copied from {getattr(harness, 'VIGILD_SOURCE', harness.VIGILD)})"


class ClusterFactory:
    """Creates clusters, single nodes and one-shot vigild runs for one test.

    Everything it starts is in `self.registry`; `close()` stops each by PID.
    """

    def __init__(self, tmp_path):
        self.tmp_path = Path(tmp_path)
        self.registry = harness.ProcessRegistry(self.tmp_path / "logs")
        self.clusters = []
        self._count = 0

    def __call__(self, n=1, start=True, **kwargs):
        """A cluster of n nodes (started and with a leader unless start=False)."""
        self._count += 1
        base = self.tmp_path / f"cluster{self._count}"
        cluster = harness.Cluster(self.registry, base, n=n, **kwargs)
        self.clusters.append(cluster)
        if start:
            cluster.start()
        return cluster

    def node(self, node_id=1, data_dir=None, **kwargs):
        """One Node (not started) with fresh ports; data dir under the test's tmp dir."""
        self._count += 1
        data_dir = data_dir or self.tmp_path / f"single{self._count}"
        return harness.Node(self.registry, node_id, data_dir, **kwargs)

    def node_on_copy(self, gnode, data_dir):
        """A Node (not started) on a copy of stopped GNODE's data dir at DATA_DIR, with
        GNODE's id, ports and scheme (so the copy is the same member to its data)."""
        shutil.copytree(gnode.data_dir, data_dir)
        port = lambda address: int(address.split(":")[1])  # noqa: E731
        return harness.Node(self.registry, gnode.id, data_dir, raft_port=port(gnode.raft),
                            api_port=port(gnode.api_address), se_port=port(gnode.se_listen),
                            tls=gnode.tls)

    def run_vigild(self, args, timeout=15.0):
        """Run `vigild ARGS` expecting it to exit; returns (rc, stdout, stderr)."""
        return self.registry.run_once([harness.VIGILD] + list(args), timeout=timeout)

    def close(self):
        self.registry.stop_all()


def _require_binary():
    if not harness.VIGILD.exists():
        pytest.fail(f"vigild not built: {harness.VIGILD} is missing "
                    f"(run {harness.TEST_BUILD_HINT})", pytrace=False)


@pytest.fixture
def cluster_factory(request, tmp_path):
    _require_binary()
    factory = ClusterFactory(tmp_path)
    request.node._vigil_registries = getattr(request.node, "_vigil_registries", [])
    request.node._vigil_registries.append(factory.registry)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def node(cluster_factory):
    """A started one-node cluster's node, with a leader."""
    return cluster_factory(1).nodes[0]


@pytest.fixture(scope="session")
def session_registry(tmp_path_factory):
    """Processes started by session- or module-scoped fixtures; stopped at the end."""
    _require_binary()
    registry = harness.ProcessRegistry(tmp_path_factory.mktemp("session-logs"))
    yield registry
    registry.stop_all()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every log of the processes the test started. A node
    the harness's watchdog found stuck fails the test, with the node's stack; so does a
    process that a crash signal ended (found when the test's processes are stopped)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when in ("call", "teardown"):
        registries = getattr(item, "_vigil_registries", [])
        stalls = [r for registry in registries for r in registry.watchdog.take_reports()]
        if rep.when == "teardown":
            for registry in registries:
                stalls.extend(registry.crashes)
                registry.crashes = []
        if stalls:
            text = "\n\n".join(stalls)
            if rep.passed:
                rep.outcome = "failed"
                rep.longrepr = text
            else:
                rep.sections.append(("watchdog", text))
    if rep.failed and rep.when in ("setup", "call"):
        for registry in getattr(item, "_vigil_registries", []):
            for label, path, text in registry.log_tails():
                rep.sections.append((f"{label} stderr (tail of {path})", text))
