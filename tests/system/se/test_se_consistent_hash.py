"""vigil-se consistent hash on a request header (pool field consistent_hash_header): the
header's value is the key of HTTP services, the client IP when the header is absent and for
TCP services; removing a server moves only the keys that were on it."""
import collections
import concurrent.futures
import copy
import os
import signal
import socket

import requests

from conftest import free_port, http_config, wait_for

CH = "LB_ALGORITHM_CONSISTENT_HASH"


def header_config(ports, vs_port, header="X-User", application="http"):
    cfg = http_config(ports, vs_port, lb=CH, application=application)
    cfg["pool"][0]["consistent_hash_header"] = header
    return cfg


def raw_get(port, headers=b"", source="127.0.0.1"):
    """One request on a fresh connection from SOURCE; returns the X-Backend answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=(source, 0)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"Connection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    return data.split(b"X-Backend: ")[1].split(b"\r\n")[0].decode()


def users_map(vs, users, source="127.0.0.1", name=b"X-User"):
    """Each user's backend: one request per user, each on its own connection (16 at a time:
    the test backends answer a reused connection only after a delayed ACK)."""
    def one(u):
        return raw_get(vs, name + b": " + u.encode() + b"\r\n", source)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return dict(zip(users, pool.map(one, users)))


def test_header_key_sticks_spreads_and_removal_moves_only_its_keys(procs, make_se):
    backends = [procs.backend("http", free_port(), "b%d" % i) for i in range(4)]
    vs = free_port()
    cfg = header_config([b.port for b in backends], vs)
    se = make_se(cfg)
    users = ["user-%d" % i for i in range(200)]
    before = users_map(vs, users)

    # the same user always lands on the same backend, whatever the client address, the
    # connection or the case of the header's name
    assert users_map(vs, users, "127.0.0.2", b"x-user") == before
    assert users_map(vs, users[:50], "127.0.0.3", b"X-USER") == {u: before[u] for u in users[:50]}
    with requests.Session() as s:  # keep-alive: many requests on one client connection
        for u in users[:50]:
            r = s.get("http://127.0.0.1:%d/u" % vs, headers={"X-User": u}, timeout=5)
            assert r.status_code == 200
            assert r.headers["X-Backend"] == before[u], u
    alice = {raw_get(vs, b"X-User: alice\r\n", "127.0.0.%d" % i) for i in range(2, 12)}
    assert len(alice) == 1, alice

    # different users spread over every backend (about 50 each of 200)
    spread = collections.Counter(before.values())
    assert set(spread) == {b.name for b in backends}, spread
    assert min(spread.values()) >= 20, spread

    # remove b2 by a reload: its users move, nobody else's does
    removed = backends[2]
    cfg2 = copy.deepcopy(cfg)
    cfg2["pool"][0]["servers"] = [{"ip": "127.0.0.1", "port": b.port}
                                  for b in backends if b is not removed]
    se.reload(cfg2)
    after = users_map(vs, users)
    moved = {u for u in users if after[u] != before[u]}
    on_removed = {u for u in users if before[u] == removed.name}
    assert moved == on_removed
    assert removed.name not in after.values()
    # and the moved ones spread over the others rather than piling onto one
    assert len({after[u] for u in moved}) >= 2, collections.Counter(after[u] for u in moved)

    # adding it back returns exactly those users to it
    se.reload(cfg)
    assert users_map(vs, users) == before


def test_absent_or_empty_header_falls_back_to_client_ip(procs, make_se):
    backends = [procs.backend("http", free_port(), "b%d" % i) for i in range(3)]
    ports = [b.port for b in backends]
    vs_header, vs_ip = free_port(), free_port()
    # two services on pools of the same servers: one hashing X-User, one the client IP
    cfg = header_config(ports, vs_header)
    ip_cfg = http_config(ports, vs_ip, lb=CH, name="by-ip", pool="pool-ip")
    cfg["pool"] += ip_cfg["pool"]
    cfg["virtualservice"] += ip_cfg["virtualservice"]
    make_se(cfg)
    choice = {}
    for i in range(2, 14):
        src = "127.0.0.%d" % i
        by_ip = raw_get(vs_ip, b"", src)
        # no header, an empty one, or a blank one: the client IP decides, as in the IP pool
        for extra in (b"", b"X-User:\r\n", b"X-User:   \r\n",
                      b"X-Users: alice\r\n"):   # the last: another header is no key either
            got = raw_get(vs_header, extra, src)
            assert got == by_ip, (src, extra, got, by_ip)
        choice[src] = by_ip
    assert len(set(choice.values())) >= 2, choice


def test_tcp_service_keeps_hashing_the_client_ip(procs, make_se):
    backends = [procs.backend("tcp", free_port(), "t%d" % i) for i in range(3)]
    vs = free_port()
    make_se(header_config([b.port for b in backends], vs, application="tcp"))
    choice = {}
    for i in range(2, 14):
        src = "127.0.0.%d" % i
        seen = set()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", vs), timeout=5,
                                          source_address=(src, 0)) as s:
                # bytes that look like the header do not matter on a TCP service
                s.sendall(b"GET / HTTP/1.1\r\nX-User: alice\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                data = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
            seen.add(data.rsplit(b"BYE ", 1)[1].strip().decode())
        assert len(seen) == 1, (src, seen)
        choice[src] = seen.pop()
    assert len(set(choice.values())) >= 2, choice


def test_header_with_another_algorithm_is_refused_on_reload(procs, make_se):
    b1 = procs.backend("http", free_port(), "b1")
    vs = free_port()
    se = make_se(header_config([b1.port], vs))
    version = se.status()["config_version"]
    bad = http_config([b1.port], vs)  # round robin
    bad["pool"][0]["consistent_hash_header"] = "X-User"
    se.write_config(bad)
    os.kill(se.pid, signal.SIGHUP)
    wait_for(lambda: "refused" in se.log_text(), 5, "refusal logged")
    assert "consistent_hash_header: only for lb_algorithm LB_ALGORITHM_CONSISTENT_HASH" \
        in se.log_text()
    assert se.status()["config_version"] == version
    r = requests.get("http://127.0.0.1:%d/" % vs, headers={"X-User": "a"}, timeout=5)
    assert r.status_code == 200
