"""vigil-se command line, status document, access log and its sequence numbers."""
import json
import subprocess

import requests

from conftest import free_port, http_config, se_binary, wait_for


def run_se(args):
    return subprocess.run([se_binary()] + args, capture_output=True, timeout=10)


def test_bad_flags_exit_2_with_one_line(tmp_path):
    cases = [
        [],
        ["--name", "x"],
        ["--name", "x", "--data-dir", str(tmp_path), "--admin", "nope"],
        ["--name", "x", "--data-dir", str(tmp_path), "--admin", "127.0.0.1:1", "--bogus", "1"],
        ["--name", "x", "--data-dir", str(tmp_path), "--admin", "127.0.0.1:1"],
        ["--name", "x", "--data-dir", str(tmp_path), "--admin", "127.0.0.1:1",
         "--config-file", str(tmp_path / "missing.json")],
        ["--name", "x", "--data-dir", str(tmp_path), "--admin", "127.0.0.1:1",
         "--config-file", "/dev/null", "--heartbeat-ms", "abc"],
    ]
    for args in cases:
        r = run_se(args)
        assert r.returncode == 2, (args, r)
        lines = r.stderr.decode().strip().splitlines()
        assert lines and lines[-1].startswith("vigil-se: "), (args, r.stderr)


def test_bad_config_file_exits_2_naming_the_field(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"pool": [{"name": "p", "servers": []}],
                               "virtualservice": [{"name": "v", "vip": "127.0.0.1",
                                                   "services": [{"port": 1}],
                                                   "pool_ref": "nope"}]}))
    r = run_se(["--name", "x", "--data-dir", str(tmp_path / "d"), "--admin",
                "127.0.0.1:%d" % free_port(), "--config-file", str(cfg)])
    assert r.returncode == 2
    assert "pool_ref" in r.stderr.decode()


def test_status_document(procs, make_se):
    p1 = free_port()
    procs.backend("http", p1, "b1")
    vs = free_port()
    se = make_se(http_config([p1], vs), name="se-status")
    requests.get("http://127.0.0.1:%d/" % vs, timeout=5)
    st = se.status()
    assert st["name"] == "se-status"
    assert st["state"] == "STANDALONE"
    assert st["controllers"] == []
    assert st["config_version"] >= 1
    assert set(st["logs"]) >= {"generated", "acked", "spooled", "dropped"}
    v = st["virtual_services"][0]
    assert v["name"] == "web" and v["listening"] is True and v["requests"] == 1
    text = se.metrics()
    assert 'vigil_se_vs_requests_total{vs="web"} 1' in text
    assert 'vigil_se_vs_request_duration_seconds_bucket{vs="web",le="+Inf"} 1' in text


def test_access_log_line_per_request_and_sequence_survives_restart(procs, make_se):
    p1 = free_port()
    procs.backend("http", p1, "b1")
    vs = free_port()
    se = make_se(http_config([p1], vs))
    with requests.Session() as s:
        for i in range(5):
            s.get("http://127.0.0.1:%d/item/%d?q=%d" % (vs, i, i), timeout=5)
        s.post("http://127.0.0.1:%d/echo" % vs, data=b"x" * 1000, timeout=5)
    wait_for(lambda: len(se.access_log()) == 6, 5, "six log records")
    recs = se.access_log()
    r0 = recs[0]
    for key in ("se_name", "seq", "timestamp", "client_ip", "client_port", "server_ip",
                "server_port", "method", "uri", "status", "bytes_in", "bytes_out",
                "total_ms", "server_ms", "vs_name"):
        assert key in r0, key
    assert r0["method"] == "GET" and r0["uri"] == "/item/0?q=0" and r0["status"] == 200
    assert r0["client_ip"] == "127.0.0.1" and r0["server_port"] == p1
    assert r0["se_name"] == "se-test" and r0["vs_name"] == "web"
    assert recs[5]["method"] == "POST" and recs[5]["bytes_in"] > 1000
    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    wait_for(lambda: se.status()["logs"]["acked"] == 6, 5, "records acked")
    # restart (clean, then a kill -9): numbers never go back
    se.stop()
    se.start()
    requests.get("http://127.0.0.1:%d/after" % vs, timeout=5)
    wait_for(lambda: len(se.access_log()) == 7, 5, "record after restart")
    assert se.access_log()[6]["seq"] > seqs[-1]
    wait_for(lambda: se.status()["logs"]["acked"] == 1, 5, "record flushed")
    se.proc.kill()
    se.stderr.close()
    se.start()
    requests.get("http://127.0.0.1:%d/after-kill" % vs, timeout=5)
    wait_for(lambda: len(se.access_log()) == 8, 5, "record after kill -9")
    assert se.access_log()[7]["seq"] > se.access_log()[6]["seq"]
