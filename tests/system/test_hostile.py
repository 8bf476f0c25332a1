"""Issue 2: hostile request bodies get a 4xx with {"error": ...} and the node keeps serving."""

import json

import pytest
import requests

import harness
from harness import healthmonitor_body

MIB = 1024 * 1024


def assert_refused(status, doc, codes=None):
    ok = codes or range(400, 500)
    assert status in ok, f"expected a 4xx refusal ({codes or '4xx'}), got {status} {doc}"
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], \
        f"error body must be {{\"error\": text}}, got {doc!r}"


def assert_still_serving(node, tag):
    assert node.running, f"vigild died (exit {node.proc.returncode})"
    status, doc = node.api.get("/api/healthz")
    assert status == 200, doc
    status, doc = node.api.post("/api/healthmonitor", healthmonitor_body(f"after-{tag}"))
    assert status == 201, f"a valid write after the hostile request failed: {status} {doc}"


def post_raw(node, data, path="/api/healthmonitor", headers=None, method="POST"):
    try:
        return node.api.request(method, path, data=data, headers=headers,
                                timeout=(2, 30))
    except requests.ConnectionError as exc:
        # a server may close the connection after refusing a huge body; that counts as
        # a refusal only if it answered first, so report it
        raise AssertionError(f"connection error instead of a 4xx answer: {exc}") from None


def nested(depth, leaf="1"):
    return ("[" * depth + leaf + "]" * depth).encode()


HOSTILE = {
    # structure
    "deep-array-100k": lambda: nested(100_000),
    "deep-object-100k": lambda: b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "deep-in-field": lambda: b'{"name":"x","type":"HEALTH_MONITOR_TCP","http_response_codes":'
                             + nested(100_000, '"HTTP_2XX"') + b"}",
    "unclosed-deep": lambda: b"[" * 100_000,
    # syntax
    "truncated": lambda: json.dumps(healthmonitor_body("trunc")).encode()[:-7],
    "trailing-garbage": lambda: json.dumps(healthmonitor_body("trail")).encode() + b"xyz",
    "two-documents": lambda: (json.dumps(healthmonitor_body("two-a"))
                              + json.dumps(healthmonitor_body("two-b"))).encode(),
    "empty": lambda: b"",
    "whitespace": lambda: b"   \n ",
    "nul-bytes": lambda: b"\x00" * 100,
    "binary": lambda: bytes(range(256)) * 8,
    # not an object
    "array": lambda: b"[]",
    "string": lambda: b'"healthmonitor"',
    "number": lambda: b"42",
    "null": lambda: b"null",
    "true": lambda: b"true",
    # encoding
    "invalid-utf8-name": lambda: b'{"name":"\xff\xfe\xc3","type":"HEALTH_MONITOR_TCP"}',
    "overlong-utf8": lambda: b'{"name":"\xc0\xaf","type":"HEALTH_MONITOR_TCP"}',
    "lone-surrogate-escape": lambda: b'{"name":"\\ud800","type":"HEALTH_MONITOR_TCP"}',
    "invalid-utf8-key": lambda: b'{"\xff":"x","name":"k","type":"HEALTH_MONITOR_TCP"}',
    # numbers and types
    "huge-number": lambda: json.dumps(healthmonitor_body("num")).encode().replace(
        b'"send_interval": 5', b'"send_interval": ' + b"9" * 5000),
    "nan": lambda: json.dumps(healthmonitor_body("nan")).encode().replace(
        b'"send_interval": 5', b'"send_interval": NaN'),
    "name-object": lambda: json.dumps(healthmonitor_body({"a": 1})).encode(),
    "name-array": lambda: json.dumps(healthmonitor_body(["a"])).encode(),
    "name-null": lambda: json.dumps(healthmonitor_body(None)).encode(),
    "type-number": lambda: json.dumps(healthmonitor_body("tn", type=7)).encode(),
    "checks-string": lambda: json.dumps(healthmonitor_body("cs", successful_checks="2")).encode(),
    "checks-bool": lambda: json.dumps(healthmonitor_body("cb", failed_checks=True)).encode(),
    # many keys
    "many-keys": lambda: json.dumps({"name": "mk", "type": "HEALTH_MONITOR_TCP",
                                     **{f"k{i}": i for i in range(50_000)}}).encode(),
    "duplicate-keys": lambda: b'{"name":"dk","name":"dk2","type":"HEALTH_MONITOR_TCP"}',
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_body_is_refused_and_node_keeps_serving(node, case):
    data = HOSTILE[case]()
    status, doc = post_raw(node, data)
    if case in ("many-keys", "duplicate-keys") and status == 201:
        # unknown fields are allowed ("more are welcome"); duplicate keys may take one value.
        # What matters is that the stored object is sane and the node is alive.
        status2, got = node.api.get(f"/api/healthmonitor/{doc['uuid']}")
        assert status2 == 200 and got["name"] in ("mk", "dk", "dk2"), got
    else:
        assert_refused(status, doc)
    assert_still_serving(node, case)
    # nothing half-written: every stored name is valid UTF-8 text that we sent on purpose
    names = [o["name"] for o in node.api.list_all("healthmonitor")]
    assert all(isinstance(n, str) for n in names), names


@pytest.mark.parametrize("case", ["name-with-nul", "name-unicode"])
def test_unusual_but_valid_strings_round_trip_or_are_refused(node, case):
    name = {"name-with-nul": "a\u0000b", "name-unicode": "nœud-\u2603-\U0001F600"}[case]
    status, doc = node.api.post("/api/healthmonitor", healthmonitor_body(name))
    if status == 201:
        status, got = node.api.get(f"/api/healthmonitor/{doc['uuid']}")
        assert status == 200 and got["name"] == name, f"stored {got!r}, sent {name!r}"
    else:
        assert_refused(status, doc, (400,))
    assert_still_serving(node, case)


@pytest.mark.parametrize("size", [MIB + 1, 10 * MIB])
def test_body_over_1mib_is_refused(node, size):
    # a valid JSON object whose only problem is its size
    pad = size - len(json.dumps(healthmonitor_body("big", http_request="")))
    body = json.dumps(healthmonitor_body("big", http_request="x" * max(pad, 0))).encode()
    assert len(body) >= size
    status, doc = post_raw(node, body)
    assert_refused(status, doc, (400, 413))
    assert_still_serving(node, f"big{size}")
    names = [o["name"] for o in node.api.list_all("healthmonitor")]
    assert "big" not in names


def test_chunked_body_over_1mib_is_refused(node):
    """No Content-Length: the limit must hold while the body streams in."""
    def chunks():
        yield b'{"name":"chunked","type":"HEALTH_MONITOR_TCP","http_request":"'
        for _ in range(11):
            yield b"y" * (1024 * 1024)
        yield b'"}'
    status, doc = post_raw(node, chunks())
    assert_refused(status, doc, (400, 413))
    assert_still_serving(node, "chunked")


def test_body_just_under_1mib_is_not_refused_for_its_size(node):
    pad = 1024 * 1024 - 4096
    body = json.dumps(healthmonitor_body("almost", http_request="x" * pad)).encode()
    status, doc = post_raw(node, body)
    # the value may be refused on its merits (400 naming http_request) but not as too big
    if status != 201:
        assert status == 400 and "http_request" in (doc or {}).get("error", ""), (status, doc)
    assert_still_serving(node, "almost")


def test_hostile_bodies_on_put(node):
    status, hm = node.api.post("/api/healthmonitor", healthmonitor_body("put-target"))
    assert status == 201, hm
    path = f"/api/healthmonitor/{hm['uuid']}"
    for case in ("deep-array-100k", "truncated", "invalid-utf8-name", "array", "checks-string"):
        status, doc = post_raw(node, HOSTILE[case](), path=path, method="PUT")
        assert_refused(status, doc)
    status, doc = post_raw(node, b"{" + b'"a":"' + b"z" * (2 * MIB) + b'"}', path=path, method="PUT")
    assert_refused(status, doc, (400, 413))
    status, got = node.api.get(path)
    assert status == 200 and got["name"] == "put-target" and got["send_interval"] == 5, got
    assert_still_serving(node, "put")


def test_many_hostile_requests_in_a_row_leave_memory_bounded(node):
    """A burst of refused requests must neither crash nor wedge the node."""
    payloads = [HOSTILE[c]() for c in ("truncated", "invalid-utf8-name", "array", "deep-array-100k")]
    for i in range(200):
        status, doc = post_raw(node, payloads[i % len(payloads)])
        assert 400 <= status < 500, (i, status, doc)
    assert_still_serving(node, "burst")
    rss_kb = int([line for line in open(f"/proc/{node.pid}/status")
                  if line.startswith("VmRSS:")][0].split()[1])
    assert rss_kb < 512 * 1024, f"vigild RSS {rss_kb} kB after 200 refused requests"


def test_wrong_methods_and_headers(node):
    api = node.api
    status, doc = api.request("PATCH", "/api/healthmonitor", data=b"{}")
    assert status in (400, 404, 405), (status, doc)
    status, doc = api.request("DELETE", "/api/healthmonitor")
    assert status in (400, 404, 405), (status, doc)
    status, doc = api.request("POST", "/api/healthz", data=b"{}")
    assert status in (400, 404, 405), (status, doc)
    # a JSON body labelled as something else: accepted or refused, never a crash
    status, doc = api.request("POST", "/api/healthmonitor",
                              data=json.dumps(healthmonitor_body("cl")).encode(),
                              headers={"Content-Type": "text/plain"})
    assert status in (201, 400, 415), (status, doc)
    assert_still_serving(node, "methods")


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"POST /api/healthmonitor HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    b"POST /api/healthmonitor HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/healthz HTTP/1.1\r\n" + b"X-Junk: " + b"j" * 200_000 + b"\r\n\r\n",
    b"POST /api/healthmonitor HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
], ids=["garbage", "huge-content-length", "negative-content-length", "long-url", "huge-header",
        "bad-chunk"])
def test_malformed_http_does_not_hurt_the_node(node, raw):
    import socket
    host, port = node.api_address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        try:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            while s.recv(65536):
                pass
        except OSError:
            pass  # the server may reset the connection; that is fine
    assert_still_serving(node, f"raw{len(raw)}")


def raw_exchange(node, data, timeout=5.0):
    """Sends DATA on one connection to NODE's API (TLS when the node uses it, as users run
    it) and reads until the server closes or TIMEOUT passes. Returns (bytes read, closed)."""
    import socket
    import ssl
    import time
    host, port = node.api_address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    if node.tls:
        ctx = ssl.create_default_context(cafile=str(node.ca_file()))
        ctx.check_hostname = False
        sock = ctx.wrap_socket(sock)
    got, closed = b"", False
    deadline = time.monotonic() + timeout
    with sock:
        sock.sendall(data)
        while time.monotonic() < deadline:
            try:
                piece = sock.recv(65536)
            except socket.timeout:
                break
            except (ssl.SSLError, OSError):
                closed = True
                break
            if not piece:
                closed = True
                break
            got += piece
    return got, closed


LAX_FRAMING = {
    "two-content-lengths": (b"Content-Length: 2\r\nContent-Length: 12\r\n", 400, b"Content-Length"),
    "space-before-colon": (b"Content-Length : 12\r\n", 400, b"header name"),
    "xchunked": (b"Transfer-Encoding: xchunked\r\n", 501, b"Transfer-Encoding"),
    "chunked-identity": (b"Transfer-Encoding: chunked, identity\r\n", 501, b"Transfer-Encoding"),
    "te-and-cl": (b"Transfer-Encoding: chunked\r\nContent-Length: 12\r\n", 400,
                  b"Transfer-Encoding and Content-Length"),
}


@pytest.mark.parametrize("case", sorted(LAX_FRAMING))
def test_a_body_whose_length_cannot_be_told_is_refused_and_the_connection_closed(node, case):
    """Issue 17 item 9: each of these was taken (the first of two lengths used), left the
    body on the connection as a next request, or hung until the client closed. Refused
    at once, before any body is read, and the connection is closed."""
    headers, status, word = LAX_FRAMING[case]
    user, password = harness.ADMIN_USER, harness.ADMIN_PASSWORD
    import base64
    auth = base64.b64encode(f"{user}:{password}".encode())
    head = (b"POST /api/healthmonitor HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth +
            b"\r\nContent-Type: application/json\r\n" + headers + b"\r\n")
    got, closed = raw_exchange(node, head + b'{"name": "x"}')
    assert got.startswith(b"HTTP/1.1 %d" % status), got[:200]
    assert word in got, got
    assert closed, "the connection stayed open"
    assert got.count(b"HTTP/1.1 ") == 1, got     # the body was not read as a request
    assert_still_serving(node, case)


def test_error_messages_name_the_field_that_is_wrong(node):
    """Issue 17 item 10: a 10 KB username or a 500 KB password answered "password:
    required"; a \\u0000 in a username "a JSON object is required"; page had an
    undocumented upper bound."""
    base = node.api.base
    cases = [
        ({"username": "u" * 10_000, "password": "p"}, "username: too long"),
        ({"username": "admin", "password": "p" * 500_000}, "password: too long"),
        ({"username": "admin"}, "password: required"),
        ({"password": "x"}, "username: required"),
    ]
    for body, want in cases:
        r = requests.post(base + "/api/login", json=body, verify=node.api.verify, timeout=10)
        assert r.status_code == 400 and r.json()["error"].startswith(want), (want, r.text[:200])
    r = requests.post(base + "/api/login", data=b'{"username": "ad\\u0000min", "password": "x"}',
                      headers={"Content-Type": "application/json"}, verify=node.api.verify,
                      timeout=10)
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"], r.text
    r = requests.post(base + "/api/login", data=b"[1, 2]", verify=node.api.verify, timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "a JSON object is required" in r.json()["error"], r.text
    status, doc = node.api.get("/api/pool", params={"page": "1000000001"})
    assert status == 400 and doc["error"] == "page: must be a whole number from 1 to 1000000000"
    status, doc = node.api.get("/api/pool", params={"page": "1000000000"})
    assert status == 200 and doc["results"] == [], (status, doc)
