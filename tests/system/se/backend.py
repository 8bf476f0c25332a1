"""Test backends for the vigil-se system tests, run as their own processes so a test can
kill one (by PID) to play a dead server.

    backend.py http PORT NAME    HTTP/1.1 keep-alive server:
        GET /...            -> "NAME /path\n" (X-Forwarded-For echoed in header X-Seen-XFF)
        GET /size/N         -> N bytes, streamed in 64 KiB pieces with Content-Length
        GET /chunked/N      -> N bytes as chunked transfer coding (pieces of 10000)
        GET /slow/MS        -> answers after MS milliseconds
        POST|PUT /echo      -> body read (Content-Length or chunked), answers
                               "len=L sha256=H\n"
    backend.py tcp PORT NAME     echo server; on the client's EOF it sends "BYE NAME\n"
                                 and closes its side.
Prints "READY" on stdout once listening.
"""
import hashlib
import http.server
import socket
import socketserver
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "?"

    def log_message(self, *args):
        pass

    def setup(self):
        # Headers and body go out in two writes: with Nagle on, the second waited for the
        # peer's delayed ACK (~40 ms per keep-alive request).
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, code, body, extra=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", self.name)
        xff = self.headers.get_all("X-Forwarded-For") or []
        self.send_header("X-Seen-XFF", ", ".join(xff))
        self.send_header("X-Seen-XFF-Lines", str(len(xff)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path
        if path.startswith("/size/"):
            n = int(path[6:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.send_header("X-Backend", self.name)
            self.end_headers()
            piece = b"x" * 65536
            while n > 0:
                k = min(n, len(piece))
                self.wfile.write(piece[:k])
                n -= k
            return
        if path.startswith("/chunked/"):
            n = int(path[9:])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Backend", self.name)
            self.end_headers()
            while n > 0:
                k = min(n, 10000)
                self.wfile.write(b"%x\r\n" % k + b"y" * k + b"\r\n")
                n -= k
            self.wfile.write(b"0\r\n\r\n")
            return
        if path.startswith("/slow/"):
            time.sleep(int(path[6:]) / 1000.0)
        self._send(200, ("%s %s\n" % (self.name, path)).encode())

    def _read_body(self):
        h = hashlib.sha256()
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 65536))
                    h.update(data)
                    total += len(data)
                    left -= len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    break
                h.update(data)
                total += len(data)
                left -= len(data)
        return total, h.hexdigest()

    def do_POST(self):
        total, digest = self._read_body()
        self._send(200, ("len=%d sha256=%s\n" % (total, digest)).encode())

    do_PUT = do_POST


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def tcp_echo(port, name):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    print("READY", flush=True)

    def serve(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    conn.sendall(("BYE %s\n" % name).encode())
                    conn.shutdown(socket.SHUT_WR)
                    return
                conn.sendall(data)

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def main():
    mode, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "tcp":
        tcp_echo(port, name)
        return
    Handler.name = name
    srv = Server(("127.0.0.1", port), Handler)
    print("READY", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
