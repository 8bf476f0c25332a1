"""Issue 14: the dashboard through the cluster IP, on the namespace test bed with the
defaults (TLS with the cluster's own certificate): headless Chromium in the client host's
namespace opens https://198.18.0.100:8080/ui/ and logs in; the leader's host is powered off
(every process killed, link down); with no reload and no new login the page reconnects by
itself once the IP has moved, to the new leader, with the same certificate and session
(tests/ui/dashboard.mjs, scenario "vip").

Run (root): /usr/bin/python3 -m pytest tests/system/netns/test_ui_vip.py
"""

import select
import subprocess
import time

from ui_helpers import REPO, SCRIPT, needs_browser, scenario_config
from vip_helpers import VIP, VipBed

pytestmark = needs_browser


def test_dashboard_follows_the_cluster_ip_to_the_new_leader(testbed, tmp_path):
    vb = VipBed(testbed, tmp_path / "cluster", tls=True)
    leader = vb.start()
    others = [n for n in vb.nodes if n is not leader]
    path = scenario_config(tmp_path, "vip", f"https://{VIP}:8080/ui/",
                           leader_name=leader.name, names=[n.name for n in vb.nodes])
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
