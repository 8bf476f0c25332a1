"""Issue 16: systemd's readiness protocol (Type=notify units, debian/*.service) without
systemd: the test binds the $NOTIFY_SOCKET datagram socket itself. vigild says READY=1 once
its API answers and STOPPING=1 on SIGTERM; vigil-se says READY=1 once its admin endpoint
and listeners serve, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 on
SIGTERM. Run in the abstract namespace and as a path, as systemd may give either."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

import harness

SE_BINARY = harness.REPO_ROOT / "build" / "src" / "se" / "vigil-se"


class NotifySocket:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + path[1:] if path.startswith("@") else path)
        self.name = path
        self.messages = []

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in m.split("\n") for m in self.messages):
                return
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        raise AssertionError(f"no {text} within {timeout} s; got {self.messages}")

    def close(self):
        self.sock.close()


def assert_stops_with_notice(proc, ns):
    proc.send_signal(signal.SIGTERM)
    ns.wait_for("STOPPING=1", 10)
    assert proc.wait(timeout=15) == 0


@pytest.mark.parametrize("kind", ["abstract", "path"])
def test_vigild_notifies_ready_once_the_api_serves_and_stopping(kind, tmp_path):
    name = f"@vigil-test-{os.getpid()}-{kind}" if kind == "abstract" else str(tmp_path / "notify")
    ns = NotifySocket(name)
    api = harness.addr(harness.allocate_port())
    pw = tmp_path / "pw"
    pw.write_text("notify-password\n")
    env = dict(os.environ, NOTIFY_SOCKET=name)
    with open(tmp_path / "vigild.log", "wb") as log:
        proc = subprocess.Popen(
            [str(harness.VIGILD), "--data-dir", str(tmp_path / "d"), "--no-tls", "--api", api,
             "--raft", harness.addr(harness.allocate_port()),
             "--se-listen", harness.addr(harness.allocate_port()),
             "--admin-password-file", str(pw), "--test-fast-password-hash"],
            env=env, stdout=log, stderr=log)
    try:
        ns.wait_for("READY=1", 20)
        r = requests.get(f"http://{api}/api/healthz", timeout=5)
        assert r.status_code == 200
        assert_stops_with_notice(proc, ns)
    finally:
        harness.terminate(proc)
        ns.close()


def test_vigil_se_notifies_ready_reloading_and_stopping(tmp_path):
    if not SE_BINARY.exists():
        pytest.skip(f"{SE_BINARY} is not built (`make` builds it)")
    ns = NotifySocket(str(tmp_path / "notify"))
    admin = harness.allocate_port()
    config = tmp_path / "se.json"
    config.write_text(json.dumps({"healthmonitor": [], "pool": [], "virtualservice": []}))
    env = dict(os.environ, NOTIFY_SOCKET=ns.name)
    with open(tmp_path / "se.log", "wb") as log:
        proc = subprocess.Popen(
            [str(SE_BINARY), "--name", "se-notify", "--data-dir", str(tmp_path / "d"),
             "--admin", f"127.0.0.1:{admin}", "--config-file", str(config)],
            env=env, stdout=log, stderr=log)
    try:
        ns.wait_for("READY=1", 20)
        assert requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).status_code == 200
        ns.messages.clear()
        proc.send_signal(signal.SIGHUP)
        ns.wait_for("RELOADING=1", 10)
        ns.wait_for("READY=1", 10)
        assert_stops_with_notice(proc, ns)
    finally:
        harness.terminate(proc)
        ns.close()
