"""Issue 12: SSH handshakes at once are bounded on the node's loop (raft's loop).

A reconnect storm of hundreds of SEs runs every key exchange on the loop that also serves
raft; past 64 handshakes in progress the node stops reading its listening socket (new
connections wait in the kernel's backlog) until one ends. Shown with 64 clients that
connect and say nothing: the next SE waits, the session already open is not disturbed, the
cluster keeps its leader, and the SE gets in as soon as the stalled clients leave.
"""

import socket
import threading

from harness import serviceengine_body, wait_until
from test_se_channel import (CONFIG, HEARTBEAT, HEARTBEAT_ACK, WELCOME, FakeSE, create,  # noqa: F401
                             keys, log_lines)

BOUND = 64


def test_handshakes_past_the_bound_wait_and_harm_nothing(node, keys):  # noqa: F811
    key_a, public_a = keys("se-a")
    key_b, public_b = keys("se-b")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_a))
    create(node.api, "serviceengine", serviceengine_body("se-b", public_b))

    good = FakeSE(node.se_listen, "se-a", key_a)
    stallers = []
    try:
        good.hello("se-a")
        good.expect(WELCOME)
        good.keep_alive()

        host, port = node.se_listen.rsplit(":", 1)
        for _ in range(BOUND):
            stallers.append(socket.create_connection((host, int(port)), timeout=5))
        result = {}

        def connect_b():
            try:
                fake = FakeSE(node.se_listen, "se-b", key_b, timeout=30)
                fake.hello("se-b")
                result["welcome"] = fake.expect(WELCOME, timeout=20)
                result["fake"] = fake
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = e

        t = threading.Thread(target=connect_b, daemon=True)
        t.start()
        wait_until(lambda: log_lines(node, f"{BOUND} handshakes in progress, the most at once"),
                   10, "the node to stop accepting at the bound")
        # while the bound holds, the SE waits in the backlog; the open session and raft
        # go on: the node answers its API as leader and the good session still hears
        t.join(0.5)
        assert "welcome" not in result, "an SE got in past the handshake bound"
        good.expect(HEARTBEAT, timeout=5, skip=(HEARTBEAT_ACK, CONFIG))
        assert node.own_state()["role"] == "CLUSTER_LEADER"

        for s in stallers:
            s.close()
        stallers = []
        t.join(30)
        assert "error" not in result, result.get("error")
        assert "welcome" in result, "the waiting SE did not get in once the handshakes ended"
        result["fake"].close()
    finally:
        for s in stallers:
            s.close()
        good.close()

