"""Issue 18: `make demo`'s own commands, as a new user runs them: start the demo (three
controllers over HTTPS, the defaults), crash controller 2 and restart it with the commands
the demo prints, see it back with CONTROLLER_NODE_JOINED, then crash and restart all three.
Issue 12: the demo's Service Engine is registered with its own key and driven by the
controllers over SSH; traffic goes through the URL the demo prints; with every controller
crashed the SE is HEADLESS and still serves, and CONNECTED again once they are back.

The demo uses fixed addresses (127.0.0.11-13, .21-22, .30); the test is skipped when a
demo already runs there. Its run directory is the test's own (VIGIL_DEMO_DIR).

Run: /usr/bin/python3 -m pytest tests/system/test_demo.py
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

import harness
from harness import wait_until

DEMO = harness.REPO_ROOT / "scripts" / "demo.sh"
SE_BINARY = harness.REPO_ROOT / "build" / "src" / "se" / "vigil-se"


def demo(run_dir, *args, timeout=120):
    env = dict(os.environ, VIGIL_DEMO_DIR=str(run_dir))
    proc = subprocess.run(["bash", str(DEMO), *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def pids(run_dir):
    return {p.stem: int(p.read_text()) for p in Path(run_dir).glob("*.pid")}


def alive(pid):
    """True while PID runs (a killed process not yet reaped, a zombie, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def demo_run(tmp_path):
    if not harness.port_is_free(8080, host="127.0.0.11", reuse=True):
        pytest.skip("a demo already runs on 127.0.0.11:8080")
    if not SE_BINARY.exists():
        pytest.fail(f"vigil-se not built: {SE_BINARY} is missing", pytrace=False)
    run_dir = tmp_path / "demo"
    try:
        yield run_dir
    finally:
        started = pids(run_dir)
        demo(run_dir, "stop", timeout=60)
        for pid in started.values():     # whatever the script left: stopped by PID
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def api(run_dir, node):
    token = (Path(run_dir) / "token").read_text().strip()
    a = harness.Api(f"127.0.0.1{node}:8080", auth=None, scheme="https",
                    verify=str(Path(run_dir) / "cluster-ca.pem"))
    return a, {"Authorization": f"Bearer {token}"}


def joined_since(run_dir, node_name, since_ms, observer=1):
    a, headers = api(run_dir, observer)
    status, doc = a.get("/api/event", headers=headers,
                        params={"event_id": "CONTROLLER_NODE_JOINED", "page_size": 1000})
    assert status == 200, (status, doc)
    return [e for e in doc["results"]
            if e["event_details"].get("node_name") == node_name
            and harness_time_ms(e["report_timestamp"]) >= since_ms]


def se_state(admin):
    return requests.get(f"{admin}/status", timeout=2).json()["state"]


def served(url):
    """The body of GET URL (through the demo's SE), or None when it failed."""
    try:
        r = requests.get(url, timeout=2)
    except requests.RequestException:
        return None
    return r.text if r.status_code == 200 else None


def harness_time_ms(text):
    from cluster_helpers import parse_time_ms
    return parse_time_ms(text)


def test_demo_reboots_a_controller_and_all_three(demo_run):
    rc, out, err = demo(demo_run, "start")
    assert rc == 0, (out, err)
    assert "scripts/demo.sh kill 2" in out and "scripts/demo.sh restart 2" in out, out
    assert "Status: " in out and "Ready" in out, out

    # the URL to send traffic to, and how to watch the SE: both printed, both work
    url = re.search(r"curl (http://127\.0\.0\.\d+:\d+/)", out).group(1)
    admin = re.search(r"curl -s (http://127\.0\.0\.\d+:\d+)/status", out).group(1)
    assert "serviceengine list" in out, out
    assert se_state(admin) == "CONNECTED"
    # the dashboard's URL and the admin password, both printed, and both work: the page is
    # served, and the password logs in
    ui = re.search(r"Dashboard \(any node\):\s+(https://\S+/ui/)", out).group(1)
    password = re.search(r"Log in as:\s+admin / (\S+)", out).group(1)
    ca = str(Path(demo_run) / "cluster-ca.pem")
    page = requests.get(ui, verify=ca, timeout=10)
    assert page.status_code == 200 and 'src="app.js"' in page.text, page.status_code
    login = requests.post(ui.replace("/ui/", "/api/login"), verify=ca, timeout=10,
                          json={"username": "admin", "password": password})
    assert login.status_code == 200 and login.json()["role"] == "admin", login.text
    bodies = {served(url) for _ in range(6)}
    assert bodies == {"hello from demo backend 1\n", "hello from demo backend 2\n"}, bodies
    # its known_hosts is `vigil cluster known-hosts` as printed: one OpenSSH line per node
    lines = [l for l in (Path(demo_run) / "known_hosts").read_text().splitlines()
             if not l.startswith("#")]
    assert [l.split()[0] for l in lines] == [f"[127.0.0.1{i}]:5098" for i in (1, 2, 3)], lines
    assert all(re.fullmatch(r"\S+ ssh-ed25519 AAAA[A-Za-z0-9+/=]+", l) for l in lines), lines
    rc, out, err = demo(demo_run, "status")
    assert rc == 0 and "Ready" in out and "state CONNECTED" in out, (out, err)
    assert re.search(r"^demo-se\s", out, re.M), out

    # no argument: the usage, and the running demo is left alone
    before = pids(demo_run)
    rc, out, err = demo(demo_run)
    assert rc == 2 and "usage" in err and "restart N" in err, (rc, out, err)
    assert pids(demo_run) == before and all(alive(p) for p in before.values())

    # crash controller 2 and start it again with the demo's commands
    t0 = int(time.time() * 1000)
    rc, out, err = demo(demo_run, "kill", "2")
    assert rc == 0 and "killed" in out, (out, err)
    assert not alive(before["node2"])
    rc, out, err = demo(demo_run, "restart", "2")
    assert rc == 0 and "started" in out, (out, err)
    wait_until(lambda: joined_since(demo_run, "node-2", t0), 20,
               "CONTROLLER_NODE_JOINED for node-2 after its restart")
    a, headers = api(demo_run, 2)
    wait_until(lambda: a.get("/api/cluster/runtime", headers=headers)[1]
               ["cluster_state"]["status"] == "Ready", 20, "node 2 to report Ready")

    # crash all three, start them again: a leader, Ready, the demo's objects kept
    rc, out, err = demo(demo_run, "kill-all")
    assert rc == 0 and out.count("killed") == 3, (out, err)
    wait_until(lambda: se_state(admin) == "HEADLESS", 20, "the SE HEADLESS with no controller")
    assert all(served(url) for _ in range(5)), "traffic through the headless SE"
    rc, out, err = demo(demo_run, "status")
    assert "state HEADLESS" in out, (rc, out, err)
    rc, out, err = demo(demo_run, "restart-all")
    assert rc == 0 and "Ready" in out, (out, err)
    wait_until(lambda: se_state(admin) == "CONNECTED", 30, "the SE CONNECTED again")
    assert served(url)

    # the SE crashed and started again: it serves (its last good config, then the pushed one)
    rc, out, err = demo(demo_run, "kill-se")
    assert rc == 0 and "killed" in out, (out, err)
    assert served(url) is None
    rc, out, err = demo(demo_run, "restart-se")
    assert rc == 0 and "started" in out, (out, err)
    wait_until(lambda: served(url), 10, "traffic through the restarted SE")
    wait_until(lambda: se_state(admin) == "CONNECTED", 20, "the restarted SE CONNECTED")
    for node in (1, 2, 3):
        a, headers = api(demo_run, node)
        status, doc = a.get("/api/pool", headers=headers)
        assert status == 200 and [p["name"] for p in doc["results"]] == ["demo-pool"], doc
