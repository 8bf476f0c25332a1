"""vigil-se health monitors: a dead backend is marked down, traffic moves, it returns."""
import collections
import signal

import requests

from conftest import fast_monitor, free_port, http_config, wait_for


def test_killed_backend_marked_down_traffic_moves_and_returns(procs, make_se):
    p1, p2 = free_port(), free_port()
    b1 = procs.backend("http", p1, "b1")
    procs.backend("http", p2, "b2")
    vs = free_port()
    se = make_se(http_config([p1, p2], vs, monitor=fast_monitor()))
    se.wait_server_state("pool-a", p1, "UP")
    se.wait_server_state("pool-a", p2, "UP")
    b1.kill()
    se.wait_server_state("pool-a", p1, "DOWN", timeout=5)
    assert "b1" not in {requests.get("http://127.0.0.1:%d/" % vs, timeout=5).headers["X-Backend"]
                        for _ in range(6)}
    procs.backend("http", p1, "b1-again")
    se.wait_server_state("pool-a", p1, "UP", timeout=5)
    seen = collections.Counter(
        requests.get("http://127.0.0.1:%d/" % vs, timeout=5).headers["X-Backend"]
        for _ in range(6))
    assert seen["b1-again"] == 3 and seen["b2"] == 3


def test_all_servers_down_gives_503_and_tcp_close(procs, make_se):
    p1, p2 = free_port(), free_port()
    b1 = procs.backend("http", p1, "b1")
    b2 = procs.backend("http", p2, "b2")
    vs = free_port()
    se = make_se(http_config([p1, p2], vs, monitor=fast_monitor("HEALTH_MONITOR_TCP")))
    se.wait_server_state("pool-a", p1, "UP")
    b1.kill()
    b2.kill()
    se.wait_server_state("pool-a", p1, "DOWN", timeout=5)
    se.wait_server_state("pool-a", p2, "DOWN", timeout=5)
    r = requests.get("http://127.0.0.1:%d/" % vs, timeout=5)
    assert r.status_code == 503
    assert "vigil_se_server_up{pool=\"pool-a\",server=\"127.0.0.1:%d\"} 0" % p1 in se.metrics()


def test_http_monitor_checks_status_codes(procs, make_se):
    p1 = free_port()
    procs.backend("http", p1, "b1")
    vs = free_port()
    mon = fast_monitor(up=1, down=1)
    mon["http_request"] = "GET /anything HTTP/1.1"
    mon["http_response_codes"] = ["HTTP_5XX"]  # the backend answers 200: a failure
    se = make_se(http_config([p1], vs, monitor=mon))
    se.wait_server_state("pool-a", p1, "DOWN", timeout=5)
    mon["http_response_codes"] = ["HTTP_2XX"]
    se.reload(http_config([p1], vs, monitor=mon))
    se.wait_server_state("pool-a", p1, "UP", timeout=5)
