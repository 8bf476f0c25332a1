"""Issue 13 end to end: a real vigil-se driven by a real three-node vigild cluster (TLS on,
the defaults). Client traffic through the SE the whole time; its log node is killed (-9)
and started again in the middle. The records spool on the SE while the node is away and
arrive after it is back: checked record by record against what the SE generated (none
missing, none twice), and the summary says the same from every node.

Every wait has a deadline; every process is stopped by its PID (the harness and `procs`).
"""
import json
import os
import re
import subprocess
from datetime import datetime, timedelta

import requests

from conftest import wait_for
from test_se_channel_client import ChannelSE
from test_se_with_cluster import VIGIL, SeBed, Traffic, connected_count

LOG_NODE = re.compile(r"delivering access logs to log node (\d+)")


def vigil_cli(node, *args):
    """`vigil ARGS` against NODE as users run it (a token, the node's CA); (rc, out, err)."""
    status, doc = node.api.post("/api/token", {"description": "cli"})
    assert status == 201, (status, doc)
    argv = [str(VIGIL), "--controller", node.api.base]
    if node.tls:
        argv += ["--cacert", str(node.ca_file())]
    p = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30,
                       env={**os.environ, "VIGIL_TOKEN": doc["token"]})
    return p.returncode, p.stdout, p.stderr


def _logs_status(se):
    return se.status()["logs"]


def test_log_node_reboot_under_traffic_loses_and_repeats_nothing(cluster_factory, procs,
                                                                 tmp_path):
    bed = SeBed(cluster_factory, procs, tmp_path)
    cluster = bed.cluster
    se = ChannelSE(procs, tmp_path, bed.key, bed.known_hosts,
                   [n.se_listen for n in cluster.nodes]).start()
    wait_for(lambda: se.state() == "CONNECTED", 20, "the SE CONNECTED")
    wait_for(lambda: connected_count(se) == 3, 20, "sessions to all three nodes")
    found = wait_for(lambda: LOG_NODE.findall(se.log_path.read_text(errors="replace")), 20,
                     "the SE to deliver to its log node")
    log_node = cluster.node(int(found[-1]))
    wait_for(lambda: requests.get("http://127.0.0.1:%d/" % bed.vs_port, timeout=2).status_code
             == 200, 20, "the virtual service pushed by the cluster served")

    traffic = Traffic(bed.vs_port).start()
    try:
        wait_for(lambda: traffic.ok >= 100, 20, "traffic through the SE")
        log_node.kill9()
        spooled_at = _logs_status(se)["generated"]
        wait_for(lambda: _logs_status(se)["generated"] >= spooled_at + 100, 20,
                 "records made while the log node is away")
        assert _logs_status(se)["spooled"] > 0, _logs_status(se)
        log_node.start()
        wait_for(lambda: traffic.ok >= 500, 30, "more traffic after the node's return")
    finally:
        traffic.stop()
    assert traffic.failed == [], traffic.failed[:5]

    wait_for(lambda: _logs_status(se)["spooled"] == 0, 30, "the spool drained")
    stats = _logs_status(se)
    assert stats["dropped"] == 0 and stats["acked"] == stats["generated"], stats
    generated = stats["generated"]
    assert generated <= 1000, "more records than one page: shorten the traffic"

    for node in cluster.nodes:
        status, doc = node.api.get("/api/analytics/logs/summary")
        assert status == 200, (node.label, status, doc)
        assert doc["unreachable"] == [], (node.label, doc)
        mine = [r for r in doc["results"] if r["se_name"] == "se-1"]
        assert len(mine) == 1, (node.label, doc)
        s = mine[0]
        assert s["records"] == generated and s["missing"] == 0, (node.label, s, stats)
        assert s["last_seq"] - s["first_seq"] + 1 == generated, (node.label, s)

    vs_uuid = [v for v in cluster.leader().api.get("/api/virtualservice")[1]["results"]
               if v["name"] == "web"][0]["uuid"]
    status, doc = log_node.api.get(f"/api/analytics/logs/virtualservice/{vs_uuid}?page_size=1000")
    assert status == 200, (status, doc)
    seqs = [r["seq"] for r in doc["results"]]
    assert len(seqs) == len(set(seqs)) == generated, (len(seqs), len(set(seqs)), generated)
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + generated))

    # the CLI, from another node than the log node: the same records, newest first
    other = next(n for n in cluster.nodes if n is not log_node)
    rc, out, err = vigil_cli(other, "--json", "logs", "web")
    assert rc == 0, (rc, out, err)
    cli_seqs = [r["seq"] for r in json.loads(out)["results"]]
    assert sorted(cli_seqs) == sorted(seqs)
    rc, out, err = vigil_cli(other, "logs", "web", "--status-class", "5xx")
    assert rc == 0 and "(no log records)" in out, (rc, out, err)
    rc, out, err = vigil_cli(other, "logs", "web")
    assert rc == 0 and out.splitlines()[0].split()[:3] == ["TIME", "SE", "SEQ"], (rc, out, err)
    assert len(out.splitlines()) == generated + 1, out[-500:]

    def every_request_counted():
        rc, out, err = vigil_cli(other, "analytics", "web")
        assert rc == 0, (rc, out, err)
        lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        assert int(lines["requests"]) == generated, out
        return lines
    # the metrics are the SE's per-second METRICS records (not the access-log records): the
    # last second's is sent once that second is over
    lines = wait_for(every_request_counted, 15, "the metrics of every request", interval=0.5)
    assert int(lines["errors 5xx"]) == 0, lines

    # no gap in the one-second series across the log node's reboot: every second from the
    # first record's to the last one's holds requests (the traffic sends one every 10 ms),
    # and the series adds up to every request
    times = sorted(r["timestamp"] for r in doc["results"])
    first = times[0][:19] + ".000Z"
    status, m = other.api.get(f"/api/analytics/metrics/virtualservice/{vs_uuid}",
                              params={"since": first, "until": times[-1], "step": 1})
    assert status == 200 and m["unreachable"] == [], (status, m)
    series = m["series"]
    assert sum(p["requests"] for p in series) >= generated - 2, (len(series), generated)
    seconds = [p["time"] for p in series]
    span = len(seconds)
    assert span >= 3, series
    t0 = datetime.strptime(seconds[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    want = [(t0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for i in range(span)]
    assert seconds == want, ("a second without requests: a gap", seconds)
    assert all(p["requests"] > 0 for p in series), series
    rc, out, err = vigil_cli(other, "logs", "no-such-vs")
    assert rc == 1 and "no virtualservice named no-such-vs" in err, (rc, out, err)
