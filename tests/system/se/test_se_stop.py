"""vigil-se clean stop: SIGTERM stops accepting, lets requests in flight finish up to the
drain deadline (5 s), flushes the access log and exits 0."""
import os
import signal
import socket
import threading
import time

import requests

from conftest import free_port, http_config, wait_for

DRAIN_S = 5.0


def refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True


def raw_get(port, path, out):
    """A keep-alive HTTP/1.1 GET on its own connection; OUT gets the bytes up to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        out.append(b"".join(chunks))


def server_active(se):
    return sum(s["active"] for p in se.status()["pools"] for s in p["servers"])


def start_in_flight(se, vs, path):
    out = []
    t = threading.Thread(target=raw_get, args=(vs, path, out), daemon=True)
    t.start()
    wait_for(lambda: server_active(se) == 1, 5, "the request in flight at the server")
    return t, out


def test_sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    se = make_se(http_config([b1.port], vs))
    # an idle keep-alive connection must not hold the stop up
    idle = requests.Session()
    assert idle.get("http://127.0.0.1:%d/warm" % vs, timeout=5).status_code == 200
    t, out = start_in_flight(se, vs, "/slow/1500")
    t0 = time.monotonic()
    os.kill(se.pid, signal.SIGTERM)
    wait_for(lambda: refused(vs), 2, "new connections refused")
    assert se.proc.alive()  # still draining the slow request
    t.join(10)
    assert not t.is_alive()
    head, _, body = out[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), out[0][:200]
    assert b"connection: close" in head.lower()
    assert body == b"b1 /slow/1500\n"
    rc = se.proc.popen.wait(DRAIN_S + 1)
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert elapsed < DRAIN_S, elapsed
    recs = [r for r in se.access_log() if r["uri"] == "/slow/1500"]
    assert len(recs) == 1 and recs[0]["status"] == 200, recs
    assert [r["uri"] for r in se.access_log()] == ["/warm", "/slow/1500"]
    idle.close()


def test_drain_deadline_cuts_off_a_request_too_slow_and_logs_it(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    se = make_se(http_config([b1.port], vs))
    t, out = start_in_flight(se, vs, "/slow/20000")
    t0 = time.monotonic()
    os.kill(se.pid, signal.SIGTERM)
    rc = se.proc.popen.wait(DRAIN_S + 3)
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert DRAIN_S - 0.5 < elapsed < DRAIN_S + 2, elapsed
    t.join(5)
    assert not out[0].startswith(b"HTTP/1.1 200")
    recs = [r for r in se.access_log() if r["uri"] == "/slow/20000"]
    assert len(recs) == 1 and recs[0]["status"] == 0, recs  # cut off, still logged
    assert "drain deadline" in se.log_text()
