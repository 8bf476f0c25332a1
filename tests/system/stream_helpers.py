"""Clients of GET /api/stream (Server-Sent Events) for the system tests and bench/stream.

SseClient reads a stream in a thread and parses it as a browser does (the WHATWG
event-stream rules); RawStream opens one over a bare (TLS) socket and reads only what it
is told to: the client that never reads, and the many idle ones.
"""

import base64
import socket
import ssl
import threading
import time

import requests

from harness import ADMIN_PASSWORD, ADMIN_USER, wait_until


class SseClient(threading.Thread):
    """GET /api/stream on NODE, parsed into self.messages: dicts {"event", "id", "data"}
    in arrival order ("id" is the stream's last event id when the message came, as a
    browser keeps it). self.status is the answer's status; self.ended once it closed."""

    def __init__(self, node, headers=None, params=None, auth=(ADMIN_USER, ADMIN_PASSWORD)):
        super().__init__(daemon=True)
        self.node = node
        self.cond = threading.Condition()
        self.messages = []
        self.comments = 0
        self.ended = False
        self.error = None
        self.resp = requests.get(node.api.base + "/api/stream", auth=auth, headers=headers,
                                 params=params, verify=node.api.verify, stream=True,
                                 timeout=(2.0, 30.0))
        self.status = self.resp.status_code
        self.headers = self.resp.headers
        if self.status == 200:
            self.start()
        else:
            self.body = self.resp.content
            self.resp.close()

    def run(self):
        last_id, event, data, pending = "", None, None, b""
        try:
            for chunk in self.resp.iter_content(chunk_size=None):
                pending += chunk
                while True:
                    cut = min((i for i in (pending.find(b"\n"), pending.find(b"\r")) if i >= 0),
                              default=-1)
                    if cut < 0:
                        break
                    line = pending[:cut].decode()
                    step = 2 if pending[cut:cut + 2] == b"\r\n" else 1
                    pending = pending[cut + step:]
                    if line == "":
                        if data is not None:
                            with self.cond:
                                self.messages.append({"event": event or "message",
                                                      "id": last_id, "data": data[:-1]})
                                self.cond.notify_all()
                        event, data = None, None
                        continue
                    if line.startswith(":"):
                        self.comments += 1
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "id":
                        last_id = value
                    elif name == "data":
                        data = (data or "") + value + "\n"
        except Exception as e:  # noqa: BLE001 - a closed or dropped stream ends here
            self.error = e
        finally:
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def of(self, event):
        with self.cond:
            return [m for m in self.messages if m["event"] == event]

    def wait(self, cond, timeout, what):
        """Waits (deadline-based) until cond(self) is true; returns its value."""
        return wait_until(lambda: cond(self), timeout, what)

    def close(self):
        self.resp.close()


def request_bytes(node, path="/api/stream", auth=(ADMIN_USER, ADMIN_PASSWORD), headers=()):
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {node.api_address}",
             f"Authorization: Basic {token}", "Accept: text/event-stream"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawStream:
    """One GET /api/stream over a bare socket (TLS when the node serves it), reading
    nothing but its status line unless asked: rcvbuf shrinks the socket's receive
    buffer before connecting (a client that never reads fills the node's side sooner)."""

    def __init__(self, node, rcvbuf=None, timeout=10.0):
        host, port = node.api_address.split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, int(port)))
        if node.tls:
            ctx = ssl.create_default_context(cafile=node.ca_file())
            ctx.check_hostname = False
            sock = ctx.wrap_socket(sock)
        self.sock = sock
        sock.sendall(request_bytes(node))
        self.head = b""
        while b"\r\n" not in self.head:
            more = sock.recv(1)
            if not more:
                break
            self.head += more
        parts = self.head.split(b" ")
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    def read_rest(self, timeout):
        """Reads until the node closes the connection; returns (bytes read, closed)."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                more = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                return total, True
            if not more:
                return total, True
            total += len(more)
        return total, False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
