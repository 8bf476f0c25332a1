"""Issue 14: a virtual service's page in the dashboard (headless Chromium), with a real SE
under traffic from a real three-node cluster (TLS on): health UP, the SE with its
controller node, the four one-second charts, the totals, and the newest log records
(filtered by status class). tests/ui/dashboard.mjs, scenario "vs"."""
import requests

from conftest import wait_for
from test_se_channel_client import ChannelSE
from test_se_with_cluster import SeBed, Traffic
from ui_helpers import needs_browser, run_scenario

pytestmark = needs_browser


def test_vs_page_charts_and_logs(cluster_factory, procs, tmp_path):
    bed = SeBed(cluster_factory, procs, tmp_path)
    se = ChannelSE(procs, tmp_path, bed.key, bed.known_hosts,
                   [n.se_listen for n in bed.cluster.nodes]).start()
    wait_for(lambda: se.state() == "CONNECTED", 20, "the SE CONNECTED")
    wait_for(lambda: requests.get("http://127.0.0.1:%d/" % bed.vs_port, timeout=2).status_code
             == 200, 20, "the virtual service served")
    traffic = Traffic(bed.vs_port).start()
    try:
        wait_for(lambda: traffic.ok >= 50, 20, "traffic through the SE")
        out = run_scenario("vs", bed.cluster.nodes[0], tmp_path, vs_name="web", se_name="se-1")
    finally:
        traffic.stop()
    assert "5xx filter: no records" in out
