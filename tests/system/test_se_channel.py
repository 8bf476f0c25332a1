"""Issue 12, controller side: the SE channel (vigild's SSH server and the frame protocol),
played against by a fake SE written with paramiko.

- an SE with its registered key gets WELCOME then CONFIG (the virtual services for it, with
  their pools and monitors), a new CONFIG with a higher config_version after a change
  through the API, HEARTBEAT_ACK for its heartbeats and the node's own HEARTBEAT, and BYE
  when the node stops;
- a follower serves the same config_version from its replica;
- refusals: an unknown key, another SE's key, garbage and an oversized frame header, a
  client that stalls its handshake: each closes only its own session with one clear log
  line; the other session and the API keep answering.
"""

import json
import socket
import struct
import threading
import time

import paramiko
import pytest

import harness
from harness import (healthmonitor_body, pool_body, serviceengine_body, virtualservice_body,
                     wait_until)

HELLO, WELCOME, CONFIG, CONFIG_ACK, HEARTBEAT, HEARTBEAT_ACK, LOGS, LOGS_ACK, BYE = range(1, 10)
METRICS, METRICS_ACK = 10, 11


class ChannelClosed(Exception):
    """The node ended the session."""


class FakeSE:
    """One SE session: SSH with an ed25519 key as user NAME, the vigil-se subsystem, frames."""

    def __init__(self, address, name, key_path, host_key=None, timeout=10.0):
        self.send_lock = threading.Lock()
        self.closed = threading.Event()
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = paramiko.Transport(self.sock)
        try:
            self.transport.start_client(timeout=timeout)
            server_key = self.transport.get_remote_server_key()
            self.server_key = f"{server_key.get_name()} {server_key.get_base64()}"
            if host_key is not None:
                assert self.server_key == host_key, "the node's host key is not its published one"
            key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
            self.transport.auth_publickey(name, key)
            self.chan = self.transport.open_session(timeout=timeout)
            self.chan.invoke_subsystem("vigil-se")
        except BaseException:
            self.close()
            raise
        self.inbox = b""
        self.frames = []   # every frame received, in order

    def close(self):
        self.closed.set()
        try:
            self.transport.close()
        finally:
            self.sock.close()

    def keep_alive(self, interval=0.5):
        """From a thread, until closed: a HEARTBEAT_ACK every INTERVAL, so that the node
        hears from this SE while the test reads nothing (it closes silent sessions)."""
        def run():
            while not self.closed.wait(interval):
                try:
                    self.send(HEARTBEAT_ACK, {"seq": 0})
                except Exception:  # noqa: BLE001 - the session ended: nothing to keep
                    return
        threading.Thread(target=run, daemon=True).start()

    def send_raw(self, data):
        with self.send_lock:
            self.chan.sendall(data)

    def send(self, frame_type, payload):
        body = json.dumps(payload).encode()
        self.send_raw(b"VF" + bytes([1, frame_type]) + struct.pack(">I", len(body)) + body)

    def _read(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no frame in time")
        self.chan.settimeout(remaining)
        try:
            data = self.chan.recv(65536)
        except socket.timeout:
            raise TimeoutError("no frame in time") from None
        if not data:
            raise ChannelClosed()
        self.inbox += data

    def recv(self, timeout=5.0):
        """The next frame (type, payload)."""
        deadline = time.monotonic() + timeout
        while len(self.inbox) < 8:
            self._read(deadline)
        assert self.inbox[:3] == b"VF\x01", self.inbox[:8]
        length = struct.unpack(">I", self.inbox[4:8])[0]
        while len(self.inbox) < 8 + length:
            self._read(deadline)
        frame = (self.inbox[3], json.loads(self.inbox[8:8 + length]))
        self.inbox = self.inbox[8 + length:]
        self.frames.append(frame)
        return frame

    def expect(self, frame_type, timeout=5.0, skip=(HEARTBEAT,)):
        """The next frame of FRAME_TYPE, passing over the types in SKIP."""
        deadline = time.monotonic() + timeout
        while True:
            got, payload = self.recv(max(0.01, deadline - time.monotonic()))
            if got == frame_type:
                return payload
            assert got in skip, f"expected frame {frame_type}, got {got} {payload}"

    def wait_closed(self, timeout=5.0):
        """Reads until the node ends the session; returns the frames read meanwhile."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                seen.append(self.recv(max(0.01, deadline - time.monotonic())))
            except ChannelClosed:
                return seen

    def hello(self, name, config_version=0, **extra):
        self.send(HELLO, dict({"name": name, "version": "test", "config_version": config_version,
                               "state": "CONNECTING", "log_seq": 1}, **extra))

    def send_logs(self, first_seq, records):
        """A LOGS frame: RECORDS (log_record() dicts) with the consecutive seqs from
        FIRST_SEQ (the agreed wire format, issue 13)."""
        self.send(LOGS, {"first_seq": first_seq, "records": records})

    def expect_logs_ack(self, timeout=5.0):
        """The next LOGS_ACK's through_seq (heartbeats, their acks and CONFIG passed over)."""
        return self.expect(LOGS_ACK, timeout=timeout,
                           skip=(HEARTBEAT, HEARTBEAT_ACK, CONFIG))["through_seq"]

    def send_metrics(self, first_seq, records):
        """A METRICS frame: RECORDS (metrics_record() dicts) with the consecutive seqs from
        FIRST_SEQ, the metrics' own sequence space (issue 13, "Metrics without a gap")."""
        self.send(METRICS, {"first_seq": first_seq, "records": records})

    def expect_metrics_ack(self, timeout=5.0):
        """The next METRICS_ACK's through_seq (heartbeats, their acks and CONFIG passed
        over; a LOGS_ACK here fails the test)."""
        return self.expect(METRICS_ACK, timeout=timeout,
                           skip=(HEARTBEAT, HEARTBEAT_ACK, CONFIG))["through_seq"]


def log_record(seq, se_name="se-a", vs_uuid=None, vs_name="vs", status=200, timestamp=None,
               client_ip="127.0.0.9", total_ms=1.5):
    """One access-log record as vigil-se's log_record_encode writes it (src/se/log_record.c).
    TIMESTAMP is epoch seconds (now when None)."""
    ts = time.time() if timestamp is None else timestamp
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
    record = {"seq": seq, "timestamp": stamp, "type": "http", "se_name": se_name,
              "vs_name": vs_name}
    if vs_uuid is not None:
        record["vs_uuid"] = vs_uuid
    record.update({"client_ip": client_ip, "client_port": 40000 + seq % 20000,
                   "server_ip": "127.0.0.2", "server_port": 9001, "method": "GET",
                   "uri": f"/item/{seq}", "status": status, "bytes_in": 120, "bytes_out": 300,
                   "total_ms": total_ms, "server_ms": total_ms / 2})
    return record


def metrics_record(seq, second, se_name="se-a", vs_uuid=None, vs_name="vs", requests=10,
                   fives=0, latency_bucket=90):
    """One per-second metrics record as vigil-se sends it on METRICS (docs/architecture.md,
    "The SE channel's frames"): SECOND (epoch seconds, a whole number) of VS_UUID, REQUESTS
    of which FIVES got a 5xx and the rest a 2xx, all in LATENCY_BUCKET (common/latency.h;
    90 is about 0.8 ms)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(second)))
    return {"seq": seq, "se_name": se_name, "vs_uuid": vs_uuid, "vs_name": vs_name,
            "timestamp": stamp, "interval_ms": 1000, "requests": requests,
            "status_classes": {"1xx": 0, "2xx": requests - fives, "3xx": 0, "4xx": 0,
                               "5xx": fives, "other": 0},
            "bytes_in": 100 * requests, "bytes_out": 1000 * requests,
            "latency_histogram": {str(latency_bucket): requests} if requests else {}}


def create(api, obj_type, body):
    status, doc = api.post(f"/api/{obj_type}", body)
    assert status == 201, f"POST /api/{obj_type}: {status} {doc}"
    return doc


def published_host_key(node):
    status, doc = node.api.get("/api/cluster")
    assert status == 200, doc
    return next(n["se_host_key"] for n in doc["nodes"] if n["id"] == node.id)


def log_lines(node, needle):
    return [line for line in node.stderr_path.read_text(errors="replace").splitlines()
            if needle in line]


@pytest.fixture
def keys(tmp_path):
    return lambda name: harness.make_ed25519_key(tmp_path / "keys", name)


def setup_config(api, se_uuid, other_se_uuid):
    """A monitor, a pool using it, a VS for every SE, a VS for SE_UUID, a VS for another."""
    hm = create(api, "healthmonitor", healthmonitor_body("hm1"))
    pool = create(api, "pool", pool_body("pool1", [hm["uuid"]]))
    unused_pool = create(api, "pool", pool_body("pool-unused", [], servers=[]))
    create(api, "virtualservice", virtualservice_body("vs-all", pool["uuid"], port=10080))
    create(api, "virtualservice", virtualservice_body("vs-mine", pool["uuid"],
                                                      se_refs=[se_uuid], port=10081))
    create(api, "virtualservice", virtualservice_body("vs-other", unused_pool["uuid"],
                                                      se_refs=[other_se_uuid], port=10082))
    return hm, pool


def names(objects):
    return sorted(o["name"] for o in objects)


def test_config_push_heartbeats_and_bye(node, keys):
    key_path, public_key = keys("se-a")
    _, other_key = keys("se-b")
    se = create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    other = create(node.api, "serviceengine", serviceengine_body("se-b", other_key))
    hm, pool = setup_config(node.api, se["uuid"], other["uuid"])

    fake = FakeSE(node.se_listen, "se-a", key_path, host_key=published_host_key(node))
    try:
        fake.hello("se-a")
        welcome = fake.expect(WELCOME)
        assert welcome["node_id"] == node.id and welcome["node_name"] == node.name
        assert welcome["controllers"] == [{"node_id": node.id, "address": node.se_listen}]
        assert welcome["log_node"] == node.id
        assert welcome["heartbeat_ms"] > 0 and welcome["leader_known"] is True
        assert welcome["cluster_uuid"]

        config = fake.expect(CONFIG)
        assert names(config["virtualservice"]) == ["vs-all", "vs-mine"]
        assert [p["uuid"] for p in config["pool"]] == [pool["uuid"]]
        assert [m["uuid"] for m in config["healthmonitor"]] == [hm["uuid"]]
        first_version = config["config_version"]
        assert first_version > 0
        fake.send(CONFIG_ACK, {"config_version": first_version, "ok": True})

        # a change through the API: a new CONFIG, a higher version
        body = pool_body("pool1", [hm["uuid"]],
                         servers=[{"ip": "127.0.0.1", "port": 9002, "enabled": True}])
        status, doc = node.api.put(f"/api/pool/{pool['uuid']}", body)
        assert status == 200, doc
        config = fake.expect(CONFIG)
        assert config["config_version"] > first_version
        assert config["pool"][0]["servers"][0]["port"] == 9002
        wait_until(lambda: log_lines(node, f"applied config_version {first_version}"), 5,
                   "the CONFIG_ACK in the node's log")

        # heartbeats both ways
        fake.send(HEARTBEAT, {"seq": 7, "state": "CONNECTED",
                              "config_version": config["config_version"]})
        assert fake.expect(HEARTBEAT_ACK) == {"seq": 7}
        beat = fake.expect(HEARTBEAT, timeout=welcome["heartbeat_ms"] / 1000 * 3, skip=())
        assert beat["leader_known"] is True and beat["seq"] >= 1
        fake.send(HEARTBEAT_ACK, {"seq": beat["seq"]})

        # a clean stop says BYE
        assert node.term() == 0
        frames = fake.wait_closed(timeout=5)
        byes = [p for t, p in frames if t == BYE]
        assert byes and "stopping" in byes[0]["reason"], frames
    finally:
        fake.close()


def test_follower_serves_the_same_config_version(cluster_factory, keys):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    key_path, public_key = keys("se-a")
    _, other_key = keys("se-b")
    se = create(leader.api, "serviceengine", serviceengine_body("se-a", public_key))
    other = create(leader.api, "serviceengine", serviceengine_body("se-b", other_key))
    setup_config(leader.api, se["uuid"], other["uuid"])

    configs = {}
    welcomes = {}
    for n in cluster.nodes:
        # the follower's replica catches up (the API's own consistent view of the objects)
        wait_until(lambda: len(n.api.list_all("virtualservice")) == 3, 10,
                   f"{n.label} to hold the virtual services")
        fake = FakeSE(n.se_listen, "se-a", key_path, host_key=published_host_key(n))
        try:
            fake.hello("se-a")
            welcomes[n.id] = fake.expect(WELCOME)
            configs[n.id] = fake.expect(CONFIG)
        finally:
            fake.close()
    versions = {nid: c["config_version"] for nid, c in configs.items()}
    assert len(set(versions.values())) == 1, versions
    assert all(c == configs[leader.id] for c in configs.values())
    # every node names the same log node and lists every controller
    assert len({w["log_node"] for w in welcomes.values()}) == 1
    assert all(sorted(c["node_id"] for c in w["controllers"]) == [1, 2, 3]
               for w in welcomes.values())


def test_refusals_close_only_their_own_session(node, keys):
    key_path, public_key = keys("se-a")
    key_b_path, key_b = keys("se-b")
    stranger_path, _ = keys("stranger")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    create(node.api, "serviceengine", serviceengine_body("se-b", key_b))
    host_key = published_host_key(node)

    # a client that connects and says nothing, held open through everything below
    host, port = node.se_listen.rsplit(":", 1)
    staller = socket.create_connection((host, int(port)), timeout=5)
    stalled_at = time.monotonic()

    good = FakeSE(node.se_listen, "se-a", key_path, host_key=host_key)
    try:
        good.hello("se-a")
        good.expect(WELCOME)
        good.keep_alive()

        # an unknown key
        with pytest.raises(paramiko.AuthenticationException):
            FakeSE(node.se_listen, "se-a", stranger_path)
        wait_until(lambda: log_lines(node, "authentication refused: the key offered for SE "
                                           "'se-a' is not its public_key"), 5,
                   "the unknown key's refusal in the log")
        # another SE's key under this name
        with pytest.raises(paramiko.AuthenticationException):
            FakeSE(node.se_listen, "se-a", key_b_path)
        wait_until(lambda: log_lines(node, "is the public_key of serviceengine 'se-b'"), 5,
                   "the other SE's key refused in the log")
        # a name no SE has
        with pytest.raises(paramiko.AuthenticationException):
            FakeSE(node.se_listen, "nobody", stranger_path)
        wait_until(lambda: log_lines(node, "no serviceengine is named 'nobody'"), 5,
                   "the unknown name refused in the log")

        # garbage after the subsystem opened
        bad = FakeSE(node.se_listen, "se-b", key_b_path, host_key=host_key)
        try:
            bad.send_raw(b"GET / HTTP/1.1\r\n\r\n")
            frames = bad.wait_closed(timeout=5)
            assert [t for t, _ in frames] == [BYE], frames
            assert "not a vigil frame" in frames[0][1]["reason"] or "magic" in frames[0][1]["reason"]
        finally:
            bad.close()
        wait_until(lambda: log_lines(node, "SE se-b: closed: refused a frame"), 5,
                   "the garbage's refusal in the log")

        # an oversized frame header (never buffered: refused from the header alone)
        big = FakeSE(node.se_listen, "se-b", key_b_path, host_key=host_key)
        try:
            big.hello("se-b")
            big.expect(WELCOME)
            big.send_raw(b"VF\x01" + bytes([LOGS]) + struct.pack(">I", 0x7FFFFFFF))
            frames = big.wait_closed(timeout=5)
            assert [t for t, _ in frames if t == BYE], frames
        finally:
            big.close()
        assert len(log_lines(node, "SE se-b: closed: refused a frame")) == 2

        # the good session and the API are untouched
        good.send(HEARTBEAT, {"seq": 1, "state": "CONNECTED", "config_version": 0})
        assert good.expect(HEARTBEAT_ACK, skip=(HEARTBEAT, CONFIG)) == {"seq": 1}
        status, _ = node.api.get("/api/serviceengine")
        assert status == 200

        # the staller is closed at its handshake deadline (10 s), the good session stays
        def staller_closed():
            staller.settimeout(0.5)
            try:
                while True:
                    data = staller.recv(4096)
                    if not data:
                        return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
        wait_until(staller_closed, 15, "the stalled client to be closed")
        assert time.monotonic() - stalled_at >= 9
        assert log_lines(node, "the handshake did not finish within 10000 ms")
        good.send(HEARTBEAT, {"seq": 2, "state": "CONNECTED", "config_version": 0})
        assert good.expect(HEARTBEAT_ACK, skip=(HEARTBEAT, CONFIG)) == {"seq": 2}
    finally:
        good.close()
        staller.close()


def test_silent_session_is_closed(node, keys):
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    fake = FakeSE(node.se_listen, "se-a", key_path)
    try:
        fake.hello("se-a")
        welcome = fake.expect(WELCOME)
        started = time.monotonic()
        # reads (and answers nothing): closed after 3 heartbeat intervals of silence
        frames = fake.wait_closed(timeout=welcome["heartbeat_ms"] / 1000 * 3 + 3)
        assert time.monotonic() - started >= welcome["heartbeat_ms"] / 1000 * 3 - 0.5
        byes = [p for t, p in frames if t == BYE]
        assert byes and "silent for" in byes[0]["reason"], frames
    finally:
        fake.close()
    assert log_lines(node, "SE se-a: closed: silent for")


def test_silence_counts_in_the_ses_own_heartbeats(node, keys):
    """An SE's HELLO gives its --heartbeat-ms and --miss-limit: the node heartbeats at that
    interval and closes the session after that many intervals of silence (here 2 x 200 ms,
    not the node's 3 x 1 s). Intervals outside vigil-se's own bounds are refused."""
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    fake = FakeSE(node.se_listen, "se-a", key_path)
    try:
        fake.hello("se-a", heartbeat_ms=200, miss_limit=2)
        welcome = fake.expect(WELCOME)
        assert welcome["heartbeat_ms"] == 200, welcome
        frames = fake.wait_closed(timeout=10)
        beats = [p for t, p in frames if t == HEARTBEAT]
        byes = [p for t, p in frames if t == BYE]
        assert byes and "(2 heartbeats of 200 ms missed)" in byes[0]["reason"], frames
        silent_ms = int(byes[0]["reason"].split("silent for ")[1].split()[0])
        assert 400 <= silent_ms < 3000, byes[0]   # the SE's limit, not the node's 3 s
        assert len(beats) >= 1, frames            # heartbeats at the SE's interval
    finally:
        fake.close()
    bad = FakeSE(node.se_listen, "se-a", key_path)
    try:
        bad.hello("se-a", heartbeat_ms=5, miss_limit=2)
        frames = bad.wait_closed(timeout=10)
        byes = [p for t, p in frames if t == BYE]
        assert byes and "heartbeat_ms 5 (10-600000)" in byes[0]["reason"], frames
    finally:
        bad.close()


def test_config_waits_for_a_leader_with_quorum(cluster_factory, keys):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    key_path, public_key = keys("se-a")
    create(leader.api, "serviceengine", serviceengine_body("se-a", public_key))
    hm = create(leader.api, "healthmonitor", healthmonitor_body("hm1"))
    pool = create(leader.api, "pool", pool_body("pool1", [hm["uuid"]]))
    create(leader.api, "virtualservice", virtualservice_body("vs-all", pool["uuid"]))
    kept = leader
    for n in cluster.nodes:
        if n is not kept:
            assert n.term() == 0

    sessions = []

    def welcome_without_leader():
        fake = FakeSE(kept.se_listen, "se-a", key_path)
        sessions.append(fake)
        fake.hello("se-a")
        welcome = fake.expect(WELCOME)
        if welcome["leader_known"]:
            fake.close()
            return None
        return fake

    try:
        fake = wait_until(welcome_without_leader, 20, "a node that knows no leader with quorum")
        fake.keep_alive()
        # no CONFIG while there is no leader with quorum
        with pytest.raises(TimeoutError):
            fake.expect(CONFIG, timeout=1.5)
        # quorum back: the node tells the SE and pushes the config it held back
        cluster.node(next(n.id for n in cluster.nodes if n is not kept)).start()
        config = fake.expect(CONFIG, timeout=20)
        assert names(config["virtualservice"]) == ["vs-all"]
        beats = [p for t, p in fake.frames if t == HEARTBEAT]
        assert beats and beats[-1]["leader_known"] is True, fake.frames
    finally:
        for s in sessions:
            s.close()


def test_session_ends_when_its_serviceengine_changes_key_or_goes(node, keys):
    key_path, public_key = keys("se-a")
    _, new_key = keys("se-a-new")
    se = create(node.api, "serviceengine", serviceengine_body("se-a", public_key))

    def connected():
        fake = FakeSE(node.se_listen, "se-a", key_path)
        fake.hello("se-a")
        fake.expect(WELCOME)
        fake.expect(CONFIG)
        fake.keep_alive()
        return fake

    fake = connected()
    try:
        # another key: the session with the old one ends, the old key is refused from now on
        status, doc = node.api.put(f"/api/serviceengine/{se['uuid']}",
                                   serviceengine_body("se-a", new_key))
        assert status == 200, doc
        byes = [p for t, p in fake.wait_closed(timeout=5) if t == BYE]
        assert byes and "another public_key" in byes[0]["reason"], fake.frames
    finally:
        fake.close()
    with pytest.raises(paramiko.AuthenticationException):
        FakeSE(node.se_listen, "se-a", key_path)

    status, doc = node.api.put(f"/api/serviceengine/{se['uuid']}",
                               serviceengine_body("se-a", public_key))
    assert status == 200, doc
    fake = connected()
    try:
        status, _ = node.api.delete(f"/api/serviceengine/{se['uuid']}")
        assert status == 204
        byes = [p for t, p in fake.wait_closed(timeout=5) if t == BYE]
        assert byes and "deleted" in byes[0]["reason"], fake.frames
    finally:
        fake.close()


def test_sessions_are_bounded(cluster_factory, keys):
    node = cluster_factory(1, extra_flags=["--test-se-max-sessions", "2"]).nodes[0]
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    host, port = node.se_listen.rsplit(":", 1)

    def banner_or_close():
        """What a new connection gets first: the SSH banner, or b"" (closed at once)."""
        s = socket.create_connection((host, int(port)), timeout=5)
        try:
            return s.recv(64)
        except ConnectionResetError:
            return b""
        finally:
            s.close()

    good = FakeSE(node.se_listen, "se-a", key_path)
    staller = socket.create_connection((host, int(port)), timeout=5)
    try:
        good.hello("se-a")
        good.expect(WELCOME)
        good.keep_alive()
        assert staller.recv(64).startswith(b"SSH-2.0-")
        assert banner_or_close() == b""   # the third is closed at accept
        wait_until(lambda: log_lines(node, "2 sessions open, the most allowed"), 5,
                   "the bound's log line")
        staller.close()
        # a place is free again once the staller's session ended
        wait_until(lambda: banner_or_close().startswith(b"SSH-2.0-"), 5,
                   "a new connection to be served")
        good.send(HEARTBEAT, {"seq": 3, "state": "CONNECTED", "config_version": 0})
        assert good.expect(HEARTBEAT_ACK, skip=(HEARTBEAT, CONFIG)) == {"seq": 3}
    finally:
        good.close()
        staller.close()
