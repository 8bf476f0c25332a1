"""vigil-se HTTP virtual services: balancing, streaming, pipelining, hostile input."""
import collections
import hashlib
import socket
import threading
import time

import requests

from conftest import free_port, http_config, wait_for


class Blocks:
    """A request body of N blocks of SIZE bytes, produced as it is sent (known length)."""

    def __init__(self, n, size):
        self.n, self.size = n, size

    def __len__(self):
        return self.n * self.size

    def __iter__(self):
        block = b"z" * self.size
        for _ in range(self.n):
            yield block


def get(port, path="/", **kw):
    return requests.get("http://127.0.0.1:%d%s" % (port, path), timeout=10, **kw)


def raw_exchange(port, data, timeout=5.0):
    """Sends DATA on a fresh connection and reads until the SE closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def test_round_robin_spreads_evenly_and_adds_xff(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    b2 = procs.backend("http", free_port(), "b2")
    vs = free_port()
    make_se(http_config([b1.port, b2.port], vs))
    seen = collections.Counter()
    with requests.Session() as s:
        for _ in range(20):
            r = s.get("http://127.0.0.1:%d/rr" % vs, timeout=5)
            assert r.status_code == 200
            assert r.headers["X-Seen-XFF"] == "127.0.0.1"
            seen[r.headers["X-Backend"]] += 1
    assert seen == {"b1": 10, "b2": 10}


def test_x_forwarded_for_replaced_by_default_appended_by_choice(procs, make_se):
    """Issue 17 item 5: a virtual service's x_forwarded_for. By default ("replace", the safe
    choice at the edge) the backend sees one X-Forwarded-For line with the client's address
    only, whatever the client sent (it cannot forge the chain); with "append" (a trusted
    proxy in front) the client's chain is kept, in one line, with the client's address
    added. The old SE kept the client's lines and added its own: two lines, the forged
    one first."""
    b1 = procs.backend("http", free_port(), "b1")
    edge, behind = free_port(), free_port()
    cfg = http_config([b1.port], edge, name="edge")
    cfg["virtualservice"].append({"name": "behind", "vip": "127.0.0.1",
                                  "services": [{"port": behind}], "pool_ref": "pool-a",
                                  "x_forwarded_for": "append"})
    make_se(cfg)
    forged = [("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-for", " 10.0.0.1 , 10.0.0.2 ")]

    def seen(port, headers):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers)
            s.sendall(f"GET /xff HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        lines = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
        fields = dict(l.split(": ", 1) for l in lines[1:])
        assert lines[0].startswith("HTTP/1.1 200"), lines
        return fields["X-Seen-XFF"], fields["X-Seen-XFF-Lines"]

    assert seen(edge, []) == ("127.0.0.1", "1")
    assert seen(edge, forged) == ("127.0.0.1", "1")
    assert seen(behind, []) == ("127.0.0.1", "1")
    assert seen(behind, forged) == ("6.6.6.6, 10.0.0.1 , 10.0.0.2, 127.0.0.1", "1")


def test_keep_alive_reuses_server_connections(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    se = make_se(http_config([b1.port], vs))
    with requests.Session() as s:
        for _ in range(30):
            assert s.get("http://127.0.0.1:%d/" % vs, timeout=5).status_code == 200
    pools = se.status()["pools"][0]["servers"]
    # one client connection, requests one after another: one pooled server connection
    assert pools[0]["idle_connections"] == 1


def test_pipelined_requests_answered_in_order(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    b2 = procs.backend("http", free_port(), "b2")
    vs = free_port()
    make_se(http_config([b1.port, b2.port], vs))
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(9))
    reqs += b"GET /p9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw_exchange(vs, reqs)
    bodies = [line.split()[1] for line in out.split(b"\n")
              if line.startswith(b"b1 ") or line.startswith(b"b2 ")]
    assert bodies == [b"/p%d" % i for i in range(10)]
    assert out.count(b"HTTP/1.1 200") == 10


def test_chunked_request_and_response(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    make_se(http_config([b1.port], vs))
    pieces = [b"a" * 1000, b"b" * 70000, b"c" * 5]

    def gen():
        for p in pieces:
            yield p

    r = requests.post("http://127.0.0.1:%d/echo" % vs, data=gen(), timeout=10)
    whole = b"".join(pieces)
    assert r.status_code == 200
    assert r.text == "len=%d sha256=%s\n" % (len(whole), hashlib.sha256(whole).hexdigest())
    r = get(vs, "/chunked/250000")
    assert r.status_code == 200
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert r.content == b"y" * 250000


def test_large_bodies_stream_without_growing_rss(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    se = make_se(http_config([b1.port], vs))
    get(vs, "/")
    base = se.rss_kb()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], se.rss_kb())
            stop.wait(0.02)

    t = threading.Thread(target=sample)
    t.start()
    try:
        size = 100 * 1024 * 1024
        # download: counted while streaming, never held whole by the client either
        r = requests.get("http://127.0.0.1:%d/size/%d" % (vs, size), stream=True, timeout=60)
        got = 0
        for chunk in r.iter_content(1 << 20):
            got += len(chunk)
        assert got == size
        # upload
        r = requests.post("http://127.0.0.1:%d/echo" % vs, data=Blocks(100, 1 << 20),
                          timeout=60)
        assert r.text.startswith("len=%d " % size)
    finally:
        stop.set()
        t.join()
    assert peak[0] - base < 20 * 1024, "RSS grew from %d kB to %d kB" % (base, peak[0])


def test_malformed_requests_get_400_and_close(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    se = make_se(http_config([b1.port], vs))
    bad = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
    ]
    for data in bad:
        out = raw_exchange(vs, data)
        assert out.startswith(b"HTTP/1.1 400 "), (data, out)
        assert b"Connection: close" in out
    assert raw_exchange(vs, b"GET / HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    out = raw_exchange(vs, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431 "), out[:100]
    # still serving
    assert get(vs).status_code == 200
    assert se.proc.alive()


def test_slow_clients_cut_off_by_timeouts(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    make_se(http_config([b1.port], vs),
            limits={"client_head_ms": 800, "client_idle_ms": 800})
    # slow loris: a head that never ends, one byte at a time
    s = socket.create_connection(("127.0.0.1", vs), timeout=5)
    start = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\n")
    got = b""
    try:
        for _ in range(40):
            s.sendall(b"X")
            time.sleep(0.1)  # pacing of the attacking client, not a wait for the SE
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.settimeout(5)
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    assert got.startswith(b"HTTP/1.1 408 "), got[:80]
    assert time.monotonic() - start < 4.5
    # an idle keep-alive connection is closed after the idle timeout
    s = socket.create_connection(("127.0.0.1", vs), timeout=5)
    start = time.monotonic()
    assert s.recv(10) == b""
    assert 0.5 < time.monotonic() - start < 4
    s.close()


def test_server_errors_502_503_504(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    dead = free_port()
    se = make_se(http_config([b1.port], vs), limits={"server_ms": 700})
    r = get(vs, "/slow/3000")
    assert r.status_code == 504
    cfg = http_config([dead], vs)
    se.reload(cfg)
    assert get(vs).status_code == 502
    cfg["pool"][0]["servers"][0]["enabled"] = False
    se.reload(cfg)
    assert get(vs).status_code == 503


def test_head_and_http10(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    make_se(http_config([b1.port], vs))
    r = requests.head("http://127.0.0.1:%d/h" % vs, timeout=5)
    assert r.status_code == 200
    out = raw_exchange(vs, b"GET /old HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200")
    assert out.endswith(b"b1 /old\n")


def test_least_connections_prefers_idle_server(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    b2 = procs.backend("http", free_port(), "b2")
    vs = free_port()
    se = make_se(http_config([b1.port, b2.port], vs, lb="LB_ALGORITHM_LEAST_CONNECTIONS"))
    # one long request occupies one server; short ones must all go to the other
    results = {}

    def slow():
        results["slow"] = get(vs, "/slow/1500").headers["X-Backend"]

    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: any(s["active"] == 1 for s in se.status()["pools"][0]["servers"]), 5,
             "the slow request in progress")
    seen = collections.Counter(get(vs, "/q").headers["X-Backend"] for _ in range(10))
    t.join()
    busy = results["slow"]
    assert seen[busy] == 0, seen


def test_consistent_hash_sticks_to_client_ip(procs, make_se):
    backends = [procs.backend("http", free_port(), "b%d" % i) for i in range(3)]
    vs = free_port()
    make_se(http_config([b.port for b in backends], vs, lb="LB_ALGORITHM_CONSISTENT_HASH"))
    choice = {}
    for i in range(2, 12):
        src = "127.0.0.%d" % i
        seen = set()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", vs), source_address=(src, 0)) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    data += b
            seen.add(data.split(b"X-Backend: ")[1].split(b"\r\n")[0])
        assert len(seen) == 1, (src, seen)
        choice[src] = seen.pop()
    assert len(set(choice.values())) >= 2


def test_out_of_descriptors_slows_accepting_instead_of_failing(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    se = make_se(http_config([b1.port], vs), nofile=64)
    # more idle clients than the SE has descriptors for: the extra ones wait in the backlog
    idle = [socket.create_connection(("127.0.0.1", vs), timeout=5) for _ in range(60)]
    result = {}

    def late_request():
        try:
            result["status"] = get(vs, "/late").status_code
        except Exception as exc:  # reported below
            result["error"] = repr(exc)

    t = threading.Thread(target=late_request)
    t.start()
    wait_for(lambda: "accepting pauses" in se.log_text(), 5, "accepting paused at the limit")
    assert "status" not in result  # the late client waits in the backlog
    assert se.proc.alive()
    for s in idle:
        s.close()
    t.join(15)
    assert result.get("status") == 200, result
    assert get(vs).status_code == 200
