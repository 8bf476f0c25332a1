"""vigil-se TCP virtual services: echo, half-close, no server."""
import socket

from conftest import free_port, http_config, wait_for


def read_all(s):
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            return data
        data += b


def test_tcp_echo_and_half_close(procs, make_se):
    b1 = procs.backend("tcp", free_port(), "t1")
    vs = free_port()
    se = make_se(http_config([b1.port], vs, application="tcp", name="tcpvs"))
    with socket.create_connection(("127.0.0.1", vs), timeout=5) as s:
        payload = b"0123456789" * 50000
        s.sendall(payload)
        # our half-close reaches the server, which answers after it and then closes
        s.shutdown(socket.SHUT_WR)
        data = read_all(s)
    assert data == payload + b"BYE t1\n"
    wait_for(lambda: any(r["type"] == "tcp" for r in se.access_log()), 5, "TCP log record")
    rec = [r for r in se.access_log() if r["type"] == "tcp"][0]
    assert rec["vs_name"] == "tcpvs"
    assert rec["bytes_in"] == len(payload)
    assert rec["bytes_out"] == len(payload) + len(b"BYE t1\n")
    assert rec["server_port"] == b1.port


def test_tcp_without_server_closes_client(procs, make_se):
    vs = free_port()
    dead = free_port()
    make_se(http_config([dead], vs, application="tcp"))
    with socket.create_connection(("127.0.0.1", vs), timeout=5) as s:
        try:
            assert read_all(s) == b""
        except ConnectionResetError:
            pass


def test_tcp_balances_round_robin(procs, make_se):
    b1 = procs.backend("tcp", free_port(), "t1")
    b2 = procs.backend("tcp", free_port(), "t2")
    vs = free_port()
    make_se(http_config([b1.port, b2.port], vs, application="tcp"))
    names = []
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", vs), timeout=5) as s:
            s.shutdown(socket.SHUT_WR)
            names.append(read_all(s).strip())
    assert sorted(names) == [b"BYE t1", b"BYE t1", b"BYE t2", b"BYE t2"]
