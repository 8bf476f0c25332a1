"""vigil-se reload (SIGHUP): no dropped requests, pools switch, bad files refused."""
import os
import signal
import threading

import requests

from conftest import free_port, http_config, wait_for


def test_reload_under_load_has_zero_failures(procs, make_se):
    p1, p2 = free_port(), free_port()
    procs.backend("http", p1, "b1")
    procs.backend("http", p2, "b2")
    vs = free_port()
    se = make_se(http_config([p1], vs))
    failures = []
    counts = {"ok": 0}
    stop = threading.Event()

    def load():
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    r = s.get("http://127.0.0.1:%d/load" % vs, timeout=5)
                    if r.status_code != 200:
                        failures.append(r.status_code)
                    else:
                        counts["ok"] += 1
                except requests.RequestException as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: counts["ok"] > 50, 10, "traffic flowing")
        for servers in ([p2], [p1, p2], [p1]):
            se.reload(http_config(servers, vs))
            mark = counts["ok"]
            wait_for(lambda: counts["ok"] > mark + 50, 10, "traffic after reload")
        # the pool switches: new requests go to b2 only
        se.reload(http_config([p2], vs))
        with requests.Session() as s:
            for _ in range(5):
                assert s.get("http://127.0.0.1:%d/" % vs, timeout=5).headers["X-Backend"] == "b2"
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []


def test_reload_opens_and_closes_listeners(procs, make_se):
    p1 = free_port()
    procs.backend("http", p1, "b1")
    vs1, vs2 = free_port(), free_port()
    cfg = http_config([p1], vs1)
    se = make_se(cfg)
    cfg2 = http_config([p1], vs2, name="other")
    se.reload(cfg2)
    assert requests.get("http://127.0.0.1:%d/" % vs2, timeout=5).status_code == 200
    wait_for(lambda: not _connectable(vs1), 5, "old listener closed")
    st = se.status()
    assert [v["name"] for v in st["virtual_services"]] == ["other"]


def _connectable(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_bad_file_on_reload_is_refused_and_config_stays(procs, make_se):
    p1 = free_port()
    procs.backend("http", p1, "b1")
    vs = free_port()
    se = make_se(http_config([p1], vs))
    version = se.status()["config_version"]
    with open(se.config_path, "w") as f:
        f.write('{"pool": [{"name": "x", "servers": [{"ip": "127.0.0.1", "port": 0}]}]}')
    os.kill(se.pid, signal.SIGHUP)
    wait_for(lambda: "refused" in se.log_text(), 5, "refusal logged")
    assert "servers[0].port" in se.log_text()
    assert se.status()["config_version"] == version
    assert requests.get("http://127.0.0.1:%d/" % vs, timeout=5).status_code == 200
