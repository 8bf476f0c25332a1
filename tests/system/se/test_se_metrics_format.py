"""Issue 16: vigil-se's GET /metrics passes the same strict Prometheus text parser as the
controllers' (tests/system/prom_parser.py), and shows the SE state as a labelled gauge
(what contrib/prometheus/vigil-alerts.yml's "SE headless" rule reads)."""

import urllib.request

from conftest import free_port, http_config
from prom_parser import parse


def test_se_metrics_parse_strictly_and_show_the_state(procs, make_se):
    backend = free_port()
    procs.backend("http", backend, "b1")
    vs_port = free_port()
    se = make_se(http_config([backend], vs_port))
    with urllib.request.urlopen(f"http://127.0.0.1:{vs_port}/", timeout=5) as r:
        assert r.status == 200
    fams = parse(se.metrics())
    states = {lab["state"]: v for _, lab, v in fams["vigil_se_state"]["samples"]}
    assert states["STANDALONE"] == 1 and sum(states.values()) == 1, states
    hist = fams["vigil_se_vs_request_duration_seconds"]["samples"]
    assert any(n.endswith("_count") and v >= 1 for n, _, v in hist), hist
    assert fams["vigil_se_log_records_total"]["type"] == "counter"
