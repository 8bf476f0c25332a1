"""Issue 14: the dashboard through the cluster IP, on the namespace test bed with the
defaults (TLS with the cluster's own certificate): headless Chromium in the client host's
namespace opens https://198.18.0.100:8080/ui/ and logs in; the leader's host is powered off
(every process killed, link down); with no reload and no new login the page reconnects by
itself once the IP has moved, to the new leader, with the same certificate and session
(tests/ui/dashboard.mjs, scenario "vip").

Run (root): /usr/bin/python3 -m pytest tests/system/netns/test_ui_vip.py
"""

import json
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import harness
from vip_helpers import VIP, VipBed

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "tests" / "ui" / "dashboard.mjs"
ARTIFACTS = REPO / "build-test" / "ui-artifacts"

pytestmark = pytest.mark.skipif(
    not (Path("/usr/bin/chromium").exists() and shutil.which("node")
         and (REPO / "ui" / "node_modules" / "playwright-core").exists()),
    reason="needs /usr/bin/chromium, node and ui/node_modules (make deps)")


def test_dashboard_follows_the_cluster_ip_to_the_new_leader(testbed, tmp_path):
    vb = VipBed(testbed, tmp_path / "cluster", tls=True)
    leader = vb.start()
    others = [n for n in vb.nodes if n is not leader]
    config = {"url": f"https://{VIP}:8080/ui/", "username": harness.ADMIN_USER,
              "password": harness.ADMIN_PASSWORD, "shots": str(ARTIFACTS),
              "leader_name": leader.name, "names": [n.name for n in vb.nodes]}
    path = tmp_path / "vip.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(vb.client.argv(["node", SCRIPT, "vip", path]), cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = []
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if line.startswith("FAULT "):
                testbed.power_off(leader.host)
                vb.wait_vip_on_leader(candidates=others)
                proc.stdin.write("DONE\n")
                proc.stdin.flush()
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(out)
    print(text)
    assert rc == 0, text[-3000:]
    assert "reconnected through the cluster IP to the new leader" in text
    assert "same certificate before and after" in text
