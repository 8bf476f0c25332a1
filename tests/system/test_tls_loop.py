"""Issue 18: in the default TLS mode a restarted node rejoins, a restarted cluster elects a
leader, and no client can make a node's event loop spin.

The defect: libmicrohttpd 0.9.75 reports "run me again at once" (timeout 0) while a TLS
handshake waits for the client's next flight, and the API server re-armed its libuv timer
with 0 ms from the timer's own callback, which libuv 1.44 runs again in the same pass,
forever: raft, signals and every socket starved. Peers' report connections to a restarted
node were such handshakes, so a restarted node never rejoined; any client that sends a
ClientHello and stalls did the same to a healthy node.

Run: /usr/bin/python3 -m pytest tests/system/test_tls_loop.py
"""

import socket
import ssl
import time
from contextlib import contextmanager

from cluster_helpers import assert_idle, cpu_seconds, stop, three_nodes, wait_stable
from harness import healthmonitor_body, wait_until


@contextmanager
def stalled_handshakes(address, count):
    """COUNT TCP connections to ADDRESS that each send a TLS ClientHello and then never
    send the client's next handshake flight (closed when the block ends)."""
    host, port = address.rsplit(":", 1)
    socks = []
    try:
        for _ in range(count):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ctx.wrap_bio(incoming, outgoing)
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(outgoing.read())
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def test_stalled_tls_handshakes_neither_stop_nor_spin_a_node(cluster_factory):
    """Twenty clients stall mid-handshake: the node keeps answering, writes commit, and
    its CPU stays far from a spinning core (it was 100 %, and the node answered nothing,
    before the fix)."""
    node = cluster_factory(1).nodes[0]
    assert node.tls
    with stalled_handshakes(node.api_address, 20):
        c0, t0 = cpu_seconds(node.pid), time.monotonic()
        for i in range(10):
            status, doc = node.api.get("/api/healthz", timeout=(2, 2))
            assert status == 200, (status, doc)
            status, doc = node.api.post("/api/healthmonitor", healthmonitor_body(f"stall-{i}"),
                                        timeout=(2, 5))
            assert status == 201, (status, doc)
            time.sleep(0.5)  # spreads the probes over a measuring window of ~5 s
        share = (cpu_seconds(node.pid) - c0) / (time.monotonic() - t0)
    assert share < 0.5, f"node used {share:.0%} of a core with 20 stalled handshakes"


def test_restarted_follower_rejoins_while_handshakes_stall(cluster_factory):
    """A follower restarted while clients hold stalled handshakes against the others
    rejoins and the cluster is Ready again; afterwards every node sits idle."""
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    with stalled_handshakes(leader.api_address, 5):
        stop(follower, "kill9")
        follower.start()
        wait_stable(cluster, timeout=30)
        status, doc = follower.api.post("/api/healthmonitor", healthmonitor_body("after-rejoin"))
        assert status == 201, (status, doc)
    wait_until(lambda: all(n.api.get("/api/healthz")[0] == 200 for n in cluster.nodes), 10,
               "every node to answer")
    assert_idle(cluster.nodes)


def test_a_node_without_its_certificate_refuses_connections_at_once(cluster_factory):
    """A new member that has not received the cluster's certificate yet (here: alone, no
    quorum, so nothing replicates) cannot answer over TLS: its API port refuses the
    connection at once instead of holding it in the backlog until the client times out."""
    cluster = three_nodes(cluster_factory, start=False)
    node = cluster.nodes[1]
    node.start(wait=False)
    host, port = node.api_address.rsplit(":", 1)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:   # for 3 s of its life, every try is refused
        assert node.running, node.stderr_tail()
        assert node.cluster_tls_cert() is None
        t0 = time.monotonic()
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            raise AssertionError("connected to a node that has no certificate to serve with")
        except ConnectionRefusedError:
            pass
        assert time.monotonic() - t0 < 0.5, "the refusal was not immediate"
        time.sleep(0.2)
