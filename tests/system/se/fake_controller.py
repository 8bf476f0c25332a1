"""A fake controller node for the SE channel tests: a paramiko SSH server on 127.0.0.1 with
its own ed25519 host key that accepts one SE key and name, runs the subsystem "vigil-se" and
speaks the frame protocol (docs/architecture.md, "The SE channel's frames"): an 8-byte
header "VF", version 1, type, big-endian u32 length, then a JSON object.

It runs in threads of the test process (no process of its own): `stop()` closes the
listening socket and every session. `silent = True` makes it stop answering (no WELCOME,
HEARTBEAT, HEARTBEAT_ACK, CONFIG) while keeping its sessions open, like a node that hangs.

LOGS: every LOGS frame is checked (consecutive seqs from first_seq, each record's "seq") and
kept in `logs` (session number, payload); the records are stored by seq in `stored` (a seq
already held is counted in `duplicates`, as the real log node drops it). Each frame is
answered LOGS_ACK {"through_seq": its last seq} while `ack_logs` is true; with it false the
frames wait, and once it is true again the newest one waiting is acknowledged (acks cover
everything before them). `max_unacked` is the most frames a session had unacknowledged.
`log_node` is WELCOME's log_node (this node's id unless set).
"""
import json
import socket
import struct
import subprocess
import threading
import time

import paramiko

HELLO, WELCOME, CONFIG, CONFIG_ACK, HEARTBEAT, HEARTBEAT_ACK, LOGS, LOGS_ACK, BYE, METRICS, \
    METRICS_ACK = range(1, 12)
NAMES = {1: "HELLO", 2: "WELCOME", 3: "CONFIG", 4: "CONFIG_ACK", 5: "HEARTBEAT",
         6: "HEARTBEAT_ACK", 7: "LOGS", 8: "LOGS_ACK", 9: "BYE",
         10: "METRICS", 11: "METRICS_ACK"}


def make_key(path, kind="ed25519"):
    """ssh-keygen a key pair at PATH (PATH.pub the public half); returns the public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL)
    return open(str(path) + ".pub").read().strip()


def encode(ftype, payload):
    body = json.dumps(payload).encode()
    return b"VF" + bytes([1, ftype]) + struct.pack(">I", len(body)) + body


class _Iface(paramiko.ServerInterface):
    def __init__(self, fc):
        self.fc = fc
        self.subsystem = threading.Event()

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        if username == self.fc.se_name and key.get_base64() == self.fc.se_key_b64:
            return paramiko.AUTH_SUCCESSFUL
        self.fc.refused_auth += 1
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel, name):
        if name == "vigil-se":
            self.subsystem.set()
            return True
        return False


class _Conn:
    def __init__(self, transport, channel, number):
        self.transport = transport
        self.channel = channel
        self.number = number
        self.unacked = []      # last seqs of the LOGS frames not acknowledged yet
        self.welcomed = False
        self.hello = None
        self.outq = []
        self.lock = threading.Lock()

    def queue(self, ftype, payload):
        with self.lock:
            self.outq.append(encode(ftype, payload))


class FakeController:
    def __init__(self, tmp_path, node_id, se_name, se_pub_line, port=None, heartbeat_ms=200):
        self.node_id = node_id
        self.se_name = se_name
        self.se_key_b64 = se_pub_line.split()[1]
        self.heartbeat_ms = heartbeat_ms
        key_path = tmp_path / ("host-key-%d" % node_id)
        if not key_path.exists():
            make_key(key_path)
        self.host_pub = open(str(key_path) + ".pub").read().split()[:2]
        self.host_key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.silent = False
        self.leader_known = True
        self.config = None            # the CONFIG payload sent after WELCOME
        self.raw_after_hello = None   # bytes sent instead of WELCOME (a broken node)
        self.controllers = [{"node_id": node_id, "address": self.address}]
        self.received = []            # (type, payload) from every session, in order
        self.refused_auth = 0
        self.ack_logs = True
        self.log_node = node_id
        self.logs = []                # (session number, LOGS payload), in order
        self.metrics = {}             # METRICS records by seq
        self.metrics_duplicates = 0
        self.stored = {}              # seq -> record
        self.duplicates = 0
        self.duplicate_seqs = []
        self.max_unacked = 0
        self.log_errors = []          # what a LOGS frame got wrong
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def known_hosts_line(self):
        return "[127.0.0.1]:%d %s %s" % (self.port, self.host_pub[0], self.host_pub[1])

    def frames(self, ftype):
        with self.lock:
            return [p for t, p in self.received if t == ftype]

    def open_sessions(self):
        with self.lock:
            return [c for c in self.conns if c.transport.is_active()]

    def stored_seqs(self):
        with self.lock:
            return sorted(self.stored)

    def logs_of(self, number):
        """The LOGS payloads of session NUMBER (0 the first this node accepted)."""
        with self.lock:
            return [p for n, p in self.logs if n == number]

    def send_all(self, ftype, payload):
        """Queues a frame on every open, welcomed session (a test's bad input)."""
        for c in self.open_sessions():
            if c.welcomed:
                c.queue(ftype, payload)

    def _on_logs(self, conn, payload):
        records = payload.get("records")
        first = payload.get("first_seq")
        with self.lock:
            self.logs.append((conn.number, payload))
            if not isinstance(first, int) or not isinstance(records, list) or not records:
                self.log_errors.append("bad LOGS %r" % (payload,))
                return
            for i, r in enumerate(records):
                if r.get("seq") != first + i:
                    self.log_errors.append("record %d has seq %r, not %d" % (i, r.get("seq"), first + i))
                if r.get("seq") in self.stored:
                    self.duplicates += 1
                    self.duplicate_seqs.append(r.get("seq"))
                else:
                    self.stored[r.get("seq")] = r
            conn.unacked.append(first + len(records) - 1)
            self.max_unacked = max(self.max_unacked, len(conn.unacked))

    def _on_metrics(self, conn, payload):
        """METRICS: checked like LOGS (consecutive seqs), stored by seq in `metrics`, acked
        at once with METRICS_ACK while `ack_logs` is true."""
        records = payload.get("records")
        first = payload.get("first_seq")
        with self.lock:
            if not isinstance(first, int) or not isinstance(records, list) or not records:
                self.log_errors.append("bad METRICS %r" % (payload,))
                return
            for i, r in enumerate(records):
                if r.get("seq") != first + i:
                    self.log_errors.append("metrics %d has seq %r, not %d" % (i, r.get("seq"),
                                                                             first + i))
                if r.get("seq") in self.metrics:
                    self.metrics_duplicates += 1
                self.metrics[r.get("seq")] = r
            ack = self.ack_logs and not self.silent
        if ack:
            conn.queue(METRICS_ACK, {"through_seq": first + len(records) - 1})

    def _ack_logs(self, conn):
        if not self.ack_logs or self.silent:
            return
        with self.lock:
            if not conn.unacked:
                return
            through, conn.unacked = conn.unacked[-1], []
        conn.queue(LOGS_ACK, {"through_seq": through})

    def push(self, config):
        """Sends CONFIG (a dict with config_version) on every open session."""
        self.config = config
        for c in self.open_sessions():
            if c.welcomed:
                c.queue(CONFIG, config)

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the thread blocked in accept()
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self.conns):
            try:
                c.transport.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        for t in self.threads:
            t.join(5)

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(s,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, sock):
        transport = paramiko.Transport(sock)
        transport.add_server_key(self.host_key)
        iface = _Iface(self)
        try:
            transport.start_server(server=iface)
        except Exception:  # noqa: BLE001 - a refused client ends its handshake
            transport.close()
            return
        channel = transport.accept(10)
        if channel is None or not iface.subsystem.wait(10):
            transport.close()
            return
        with self.lock:
            conn = _Conn(transport, channel, len(self.conns))
            self.conns.append(conn)
        try:
            self._frames(conn)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            transport.close()

    def _frames(self, conn):
        ch = conn.channel
        ch.settimeout(0.02)
        data = b""
        next_hb = time.monotonic()
        seq = 0
        while not self.stopped and conn.transport.is_active() and not ch.closed:
            try:
                piece = ch.recv(65536)
                if not piece:
                    return
                data += piece
            except socket.timeout:
                pass
            while len(data) >= 8:
                assert data[:3] == b"VF\x01", data[:8]
                n = struct.unpack(">I", data[4:8])[0]
                if len(data) < 8 + n:
                    break
                ftype, payload = data[3], json.loads(data[8:8 + n])
                data = data[8 + n:]
                with self.lock:
                    self.received.append((ftype, payload))
                if ftype == HELLO:
                    conn.hello = payload
                elif ftype == HEARTBEAT and not self.silent:
                    conn.queue(HEARTBEAT_ACK, {"seq": payload.get("seq")})
                elif ftype == LOGS:
                    self._on_logs(conn, payload)
                elif ftype == METRICS:
                    self._on_metrics(conn, payload)
            if self.raw_after_hello is not None and conn.hello is not None:
                ch.sendall(self.raw_after_hello)
                conn.hello = None
            elif not self.silent and conn.hello is not None and not conn.welcomed:
                conn.welcomed = True
                conn.queue(WELCOME, {"node_id": self.node_id, "node_name": "node-%d" % self.node_id,
                                     "cluster_uuid": "fake", "controllers": self.controllers,
                                     "log_node": self.log_node, "heartbeat_ms": self.heartbeat_ms,
                                     "leader_known": self.leader_known})
                if self.config is not None:
                    conn.queue(CONFIG, self.config)
            if not self.silent and conn.welcomed and time.monotonic() >= next_hb:
                seq += 1
                conn.queue(HEARTBEAT, {"seq": seq, "leader_known": self.leader_known})
                next_hb = time.monotonic() + self.heartbeat_ms / 1000.0
            self._ack_logs(conn)
            with conn.lock:
                out, conn.outq = b"".join(conn.outq), []
            if out and not self.silent:
                ch.sendall(out)
