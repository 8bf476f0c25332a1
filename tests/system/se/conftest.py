"""Fixtures for the vigil-se system tests.

Every process a test starts goes through `procs`, which stops it by PID (SIGTERM, then
SIGKILL) in teardown, also when the test fails. Waiting is always on a condition with a
deadline (`wait_for`), never a bare sleep. Traffic stays on 127.0.0.0/8.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BACKEND = HERE / "backend.py"


def se_binary():
    path = os.environ.get("VIGIL_SE_BIN") or str(REPO / "build" / "src" / "se" / "vigil-se")
    if not os.access(path, os.X_OK):
        pytest.fail("vigil-se not built at %s (run `make` first or set VIGIL_SE_BIN)" % path)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=10.0, what="condition", interval=0.02):
    """Calls COND until it returns a true value (returned) or TIMEOUT seconds pass."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # the condition may fail while things start
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last error: %r)"
                                 % (timeout, what, last_exc))
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Proc:
    def __init__(self, args, env=None, stdout=None, stderr=None, preexec_fn=None):
        self.args = args
        self.popen = subprocess.Popen(args, env=env, stdout=stdout or subprocess.PIPE,
                                      stderr=stderr or subprocess.STDOUT,
                                      preexec_fn=preexec_fn)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        for f in (self.popen.stdout, self.popen.stderr):
            if f:
                f.close()

    def kill(self):
        self.stop(signal.SIGKILL)


class Procs:
    def __init__(self):
        self.all = []

    def start(self, args, **kw):
        p = Proc(args, **kw)
        self.all.append(p)
        return p

    def backend(self, mode, port, name):
        p = self.start([sys.executable, str(BACKEND), mode, str(port), name])
        line = p.popen.stdout.readline()
        if b"READY" not in line:
            raise AssertionError("backend %s on %d did not start: %r" % (name, port, line))
        wait_for(lambda: port_open(port), 5, "backend %s port %d" % (name, port))
        p.port = port
        p.name = name
        return p

    def stop_all(self):
        for p in reversed(self.all):
            p.stop()


@pytest.fixture
def procs():
    ps = Procs()
    yield ps
    ps.stop_all()


class SE:
    """A vigil-se process in standalone mode."""

    def __init__(self, procs, tmp_path, config, limits=None, name="se-test", nofile=None):
        self.nofile = nofile
        self.procs = procs
        self.dir = tmp_path / "se-data"
        self.config_path = tmp_path / "se-config.json"
        self.admin_port = free_port()
        self.name = name
        self.limits = limits
        self.write_config(config)
        self.stderr_path = tmp_path / "se-stderr.log"
        self.proc = None
        self.start()

    def write_config(self, config):
        tmp = str(self.config_path) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f)
        os.replace(tmp, self.config_path)
        self.config = config

    def start(self):
        env = dict(os.environ)
        if self.limits:
            env["VIGIL_SE_LIMITS"] = ",".join("%s=%d" % kv for kv in self.limits.items())
        self.stderr = open(self.stderr_path, "ab")
        preexec = None
        if self.nofile:
            import resource
            n = self.nofile

            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        self.proc = self.procs.start(
            [se_binary(), "--name", self.name, "--data-dir", str(self.dir), "--admin",
             "127.0.0.1:%d" % self.admin_port, "--config-file", str(self.config_path)],
            env=env, stdout=self.stderr, stderr=self.stderr, preexec_fn=preexec)
        self.pid = self.proc.pid
        wait_for(lambda: self.status()["virtual_services"] is not None, 10, "SE admin /status")
        wait_for(self.all_listening, 10, "every enabled virtual service listening")

    def stop(self):
        self.proc.stop()
        self.stderr.close()

    def log_text(self):
        return self.stderr_path.read_text(errors="replace")

    def status(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/status" % self.admin_port,
                                    timeout=2) as r:
            return json.loads(r.read())

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port,
                                    timeout=2) as r:
            return r.read().decode()

    def all_listening(self):
        st = self.status()
        return all(v["listening"] for v in st["virtual_services"]
                   if any(c.get("enabled", True) and c["name"] == v["name"]
                          for c in self.config.get("virtualservice", [])))

    def server_states(self, pool):
        for p in self.status()["pools"]:
            if p["name"] == pool:
                return {"%s:%d" % (s["ip"], s["port"]): s["state"] for s in p["servers"]}
        return {}

    def wait_server_state(self, pool, port, state, timeout=10):
        key = "127.0.0.1:%d" % port
        wait_for(lambda: self.server_states(pool).get(key) == state, timeout,
                 "server %s of pool %s %s" % (key, pool, state))

    def reload(self, config, timeout=10):
        before = self.status()["config_version"]
        self.write_config(config)
        os.kill(self.pid, signal.SIGHUP)
        wait_for(lambda: self.status()["config_version"] > before, timeout, "reload applied")

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def access_log(self):
        path = self.dir / "access.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def http_config(ports, vs_port, monitor=None, lb="LB_ALGORITHM_ROUND_ROBIN", name="web",
                application="http", pool="pool-a"):
    """A one-VS config: pool POOL with servers on PORTS, optional monitor dict."""
    cfg = {"healthmonitor": [], "pool": [], "virtualservice": []}
    pool_obj = {"name": pool, "lb_algorithm": lb,
                "servers": [{"ip": "127.0.0.1", "port": p} for p in ports]}
    if monitor:
        cfg["healthmonitor"].append(monitor)
        pool_obj["health_monitor_refs"] = [monitor["name"]]
    cfg["pool"].append(pool_obj)
    cfg["virtualservice"].append({"name": name, "vip": "127.0.0.1",
                                  "services": [{"port": vs_port}],
                                  "application": application, "pool_ref": pool})
    return cfg


def fast_monitor(kind="HEALTH_MONITOR_HTTP", up=2, down=2):
    m = {"name": "fast", "type": kind, "send_interval": 0.2, "receive_timeout": 0.15,
         "successful_checks": up, "failed_checks": down}
    return m


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach what each SE of the test says: /status, the error counters of
    /metrics, and the tail of its log (a flake can then be told from a bug)."""
    outcome = yield
    rep = outcome.get_result()
    if not (rep.failed and rep.when in ("setup", "call")):
        return
    for se in getattr(item, "_vigil_ses", []):
        parts = []
        try:
            parts.append("status: " + json.dumps(se.status())[:4000])
            parts.append("metrics (errors): " + "\n".join(
                ln for ln in se.metrics().splitlines() if "error" in ln and not ln.startswith("#")))
        except Exception as exc:  # noqa: BLE001 - the SE may be gone; say so
            parts.append(f"admin API: {exc}")
        try:
            parts.append("log tail:\n" + "\n".join(se.log_text().splitlines()[-40:]))
        except OSError as exc:
            parts.append(f"log: {exc}")
        rep.sections.append((f"vigil-se {getattr(se, 'name', '')}", "\n".join(parts)))


@pytest.fixture
def make_se(procs, tmp_path, request):
    created = []
    request.node._vigil_ses = created   # for the failure report below

    def make(config, limits=None, name="se-test", nofile=None):
        se = SE(procs, tmp_path, config, limits=limits, name=name, nofile=nofile)
        created.append(se)
        return se

    yield make


@pytest.fixture
def se_key(tmp_path):
    """An SE key pair for the SE channel tests: (private key path, public line)."""
    from fake_controller import make_key
    path = tmp_path / "se-key"
    return path, make_key(path)


@pytest.fixture
def fakes():
    """Fake controllers a test makes (append them): stopped at teardown."""
    made = []
    yield made
    for f in made:
        f.stop()
