"""Issue 5: authentication and TLS, against real vigild processes.

The contract's "Authentication and TLS (v2)": every endpoint needs credentials except
GET /api/healthz, POST /api/login and the web UI's files; roles admin / operator /
read-only; sessions (cookie + X-CSRFToken + same origin for writes) that any node verifies
and that survive a leader change; API tokens (shown once, expiry, revocation) and HTTP
Basic; lockout after repeated failures per account and per source address; HTTPS with an
operator's certificate or the cluster's replicated self-signed one.

Requests are made by hand (requests, trust_env off so no proxy, netrc or CA bundle of the
machine interferes) rather than with harness.Api, which always authenticates as admin.
Failed logins lock the source address on the node that saw them, so tests that fail
logins on purpose send them from their own 127.0.0.x addresses (every 127/8 address is
local on Linux) and never from 127.0.0.1, which the harness uses.

Most single-node checks share one module-scoped node (users and addresses kept apart);
the multi-node scenarios each get their own 3-node cluster.
"""

import base64
import hashlib
import json
import re
import ssl
import statistics
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

import harness
from harness import healthmonitor_body, pool_body, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

OBJECT_TYPES = ("pool", "healthmonitor", "virtualservice", "serviceengine")
SOME_UUID = "00000000-0000-4000-8000-000000000001"
EVIL_ORIGIN = "http://evil.example"


# ---------------------------------------------------------------------------
# requests by hand

class SourceAddressAdapter(HTTPAdapter):
    """Connections from a chosen local address (the server sees it as the peer)."""

    def __init__(self, source, **kw):
        self.source = (source, 0)
        super().__init__(**kw)

    def init_poolmanager(self, connections, maxsize, block=False, **kw):
        kw["source_address"] = self.source
        super().init_poolmanager(connections, maxsize, block, **kw)


def basic_header(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def url_of(node, path):
    return f"{node.api.base}{path}"


def call(node, method, path, body=None, cookie=None, csrf=None, bearer=None, basic=None,
         headers=None, source=None, verify=None, timeout=(2.0, 10.0), data=None):
    """One request to NODE with exactly the credentials given. Returns the Response.
    VERIFY None: what the node's own Api verifies (the cluster's certificate over TLS)."""
    if verify is None:
        verify = node.api.verify
    hdrs = {}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
        data = json.dumps(body)
    if cookie is not None:
        hdrs["Cookie"] = f"sessionid={cookie}"
    if csrf is not None:
        hdrs["X-CSRFToken"] = csrf
    if bearer is not None:
        hdrs["Authorization"] = f"Bearer {bearer}"
    if basic is not None:
        hdrs["Authorization"] = basic_header(*basic)
    hdrs.update(headers or {})
    with requests.Session() as s:
        s.trust_env = False
        if source is not None:
            s.mount("http://", SourceAddressAdapter(source))
            s.mount("https://", SourceAddressAdapter(source))
        return s.request(method, url_of(node, path), data=data, headers=hdrs, verify=verify,
                         timeout=timeout, allow_redirects=False)


def doc_of(resp):
    try:
        return resp.json() if resp.content else None
    except ValueError:
        return None


def set_cookies(resp):
    """Every Set-Cookie header line of RESP."""
    return resp.raw.headers.getlist("Set-Cookie")


def cookie_value(line, name):
    m = re.match(rf"{name}=([^;]*)", line)
    return m.group(1) if m else None


def login(node, user, password, source=None, verify=None):
    """POST /api/login. Returns (response, sessionid or None, csrftoken or None)."""
    r = call(node, "POST", "/api/login", {"username": user, "password": password},
             source=source, verify=verify)
    sid = csrf = None
    for line in set_cookies(r):
        sid = cookie_value(line, "sessionid") or sid
        csrf = cookie_value(line, "csrftoken") or csrf
    return r, sid, csrf


def login_ok(node, user=harness.ADMIN_USER, password=harness.ADMIN_PASSWORD, **kw):
    r, sid, csrf = login(node, user, password, **kw)
    assert r.status_code == 200, (r.status_code, r.text)
    assert sid and csrf and doc_of(r)["csrftoken"] == csrf, (set_cookies(r), r.text)
    return sid, csrf


def make_user(node, name, role, password):
    status, doc = node.api.post("/api/user", {"username": name, "password": password,
                                              "role": role})
    assert status in (200, 201), (status, doc)


def make_token(node, **body):
    status, doc = node.api.post("/api/token", body)
    assert status == 201, (status, doc)
    return doc


def events_of(node, event_id):
    status, doc = node.api.get("/api/event", params={"event_id": event_id, "page_size": 1000})
    assert status == 200, (status, doc)
    return doc["results"]


def parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------
# one node shared by the single-node tests

@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("auth-shared")
    registry = harness.ProcessRegistry(base / "logs")
    try:
        cluster = harness.Cluster(registry, base, n=1).start()
        yield cluster
    finally:
        registry.stop_all()


@pytest.fixture
def node(request, shared_cluster):
    """The shared node; its logs are attached to the report when the test fails."""
    request.node._vigil_registries = getattr(request.node, "_vigil_registries", [])
    request.node._vigil_registries.append(shared_cluster.registry)
    return shared_cluster.nodes[0]


# ---------------------------------------------------------------------------
# the gate: what needs credentials

def every_route():
    """(method, path) of every route the API has (and a few it does not), every method."""
    paths = ["/api/cluster", "/api/cluster/runtime", "/api/cluster/nope", "/api/event",
             "/api/session", "/api/logout", "/api/token", "/api/token/some-id", "/api/user",
             "/api/user/admin", "/api/internal/peer", "/api/internal/command", "/api/stream",
             "/api/analytics/logs/summary", f"/api/analytics/logs/virtualservice/{SOME_UUID}",
             f"/api/analytics/metrics/virtualservice/{SOME_UUID}", "/api/no-such-thing",
             "/api/login", "/api/healthz/", "/API/pool", "//api/pool", "/nothing",
             "/metrics", "/metrics/"]
    for t in OBJECT_TYPES:
        paths += [f"/api/{t}", f"/api/{t}/", f"/api/{t}/{SOME_UUID}"]
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    return [(m, p) for p in paths for m in methods]


def test_every_endpoint_refuses_unauthenticated_calls(node):
    hm = node.api.post("/api/healthmonitor", healthmonitor_body("gate-hm"))[1]
    refused = []
    for method, path in every_route() + [(m, f"/api/healthmonitor/{hm['uuid']}")
                                         for m in ("GET", "PUT", "DELETE")]:
        if method == "POST" and path == "/api/login":
            continue
        body = healthmonitor_body("gate-x") if method in ("POST", "PUT") else None
        r = call(node, method, path, body=body)
        if r.status_code != 401:
            refused.append((method, path, r.status_code, r.text[:100]))
            continue
        assert r.headers.get("WWW-Authenticate", "").startswith("Basic"), (method, path)
        if method != "HEAD":
            assert set(doc_of(r)) == {"error"}, (method, path, r.text)
    assert not refused, f"answered without credentials: {refused}"
    # nothing was written, nothing deleted
    names = [o["name"] for o in node.api.list_all("healthmonitor")]
    assert "gate-x" not in names and "gate-hm" in names

    # the contract's exceptions
    for method in ("GET", "HEAD"):
        r = call(node, method, "/api/healthz")
        assert r.status_code == 200, r.text
        r = call(node, method, "/")
        assert r.status_code == 302 and r.headers["Location"] == "/ui/"
        for path in ("/ui/", "/ui/index.html"):
            assert call(node, method, path).status_code != 401, path
    assert doc_of(call(node, "GET", "/api/healthz"))["status"] == "ok"
    r = call(node, "POST", "/api/login", data="")
    assert r.status_code == 400, r.text      # open, but wants a body
    # the open prefixes lead nowhere else
    for path in ("/ui/../api/pool", "/ui/%2e%2e/api/pool", "/ui/..%2fapi/pool"):
        r = call(node, "GET", path)
        assert r.status_code in (400, 401, 404), (path, r.status_code, r.text)
    # credentials that are wrong are refused the same way
    for kw in ({"bearer": "x" * 43}, {"cookie": "v1.YWRtaW4.abc.1.2.deadbeef"},
               {"headers": {"Authorization": "Basic !!!"}},
               {"headers": {"Authorization": "Digest username=admin"}},
               {"headers": {"X-Vigil-Node-Auth": "1.00"}},
               {"headers": {"X-Vigil-On-Behalf-Of": "admin:admin"}}):
        r = call(node, "GET", "/api/pool", **kw)
        assert r.status_code == 401, (kw, r.status_code, r.text)


def test_internal_endpoints_are_for_nodes_only(node):
    make_user(node, "internal-op", "operator", "internal-op-pass")
    admin = (harness.ADMIN_USER, harness.ADMIN_PASSWORD)
    for who in (admin, ("internal-op", "internal-op-pass")):
        r = call(node, "GET", "/api/internal/peer", basic=who)
        assert r.status_code == 403, (who[0], r.status_code, r.text)
    r = call(node, "POST", "/api/internal/command", {"op": "se_runtime"},
             basic=("internal-op", "internal-op-pass"))
    assert r.status_code == 403, r.text
    # whoever may post internal commands, a user-management command is not one of them
    r = call(node, "POST", "/api/internal/command", {"op": "user_delete", "name": "admin"},
             basic=admin)
    assert r.status_code in (400, 403), r.text
    assert node.api.get("/api/user/admin")[0] == 200


# ---------------------------------------------------------------------------
# roles

def test_roles_read_only_operator_admin(node):
    make_user(node, "ro-user", "read-only", "read-only-pass")
    make_user(node, "op-user", "operator", "operator-pass")
    ro = ("ro-user", "read-only-pass")
    op = ("op-user", "operator-pass")
    hm = node.api.post("/api/healthmonitor", healthmonitor_body("roles-hm"))[1]

    # read-only: every read, no write
    for path in ["/api/cluster", "/api/cluster/runtime", "/api/event", "/api/session"] + \
            [f"/api/{t}" for t in OBJECT_TYPES] + [f"/api/healthmonitor/{hm['uuid']}"]:
        r = call(node, "GET", path, basic=ro)
        assert r.status_code == 200, (path, r.status_code, r.text)
    writes = [("POST", "/api/healthmonitor", healthmonitor_body("ro-hm")),
              ("PUT", f"/api/healthmonitor/{hm['uuid']}", healthmonitor_body("roles-hm", send_interval=9)),
              ("DELETE", f"/api/healthmonitor/{hm['uuid']}", None),
              ("POST", "/api/pool", pool_body("ro-pool")),
              ("POST", "/api/virtualservice", {"name": "ro-vs"}),
              ("POST", "/api/serviceengine", {"name": "ro-se"}),
              ("POST", "/api/user", {"username": "x1", "password": "password-1", "role": "admin"}),
              ("PUT", "/api/user/ro-user", {"role": "admin"}),
              ("DELETE", "/api/user/op-user", None)]
    for method, path, body in writes:
        r = call(node, method, path, body=body, basic=ro)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    for path in ("/api/user", "/api/user/admin"):
        assert call(node, "GET", path, basic=ro).status_code == 403
        assert call(node, "GET", path, basic=op).status_code == 403

    # operator: config writes, but not users
    r = call(node, "POST", "/api/healthmonitor", healthmonitor_body("op-hm"), basic=op)
    assert r.status_code == 201, r.text
    op_hm = doc_of(r)
    r = call(node, "PUT", f"/api/healthmonitor/{op_hm['uuid']}",
             healthmonitor_body("op-hm", send_interval=7), basic=op)
    assert r.status_code == 200 and doc_of(r)["send_interval"] == 7, r.text
    r = call(node, "POST", "/api/pool", pool_body("op-pool", [op_hm["uuid"]]), basic=op)
    assert r.status_code == 201, r.text
    assert call(node, "DELETE", f"/api/pool/{doc_of(r)['uuid']}", basic=op).status_code == 204
    assert call(node, "DELETE", f"/api/healthmonitor/{op_hm['uuid']}", basic=op).status_code == 204
    for method, path, body in writes[6:]:
        r = call(node, method, path, body=body, basic=op)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    assert node.api.get("/api/user/ro-user")[1]["role"] == "read-only"
    assert node.api.get("/api/user/op-user")[0] == 200

    # every role manages its own tokens, and a token carries its user's role
    r = call(node, "POST", "/api/token", {"description": "ro"}, basic=ro)
    assert r.status_code == 201, r.text
    ro_token = doc_of(r)
    assert ro_token["username"] == "ro-user"
    assert call(node, "GET", "/api/pool", bearer=ro_token["token"]).status_code == 200
    assert call(node, "POST", "/api/healthmonitor", healthmonitor_body("ro-tok-hm"),
                bearer=ro_token["token"]).status_code == 403
    listed = doc_of(call(node, "GET", "/api/token", basic=ro))["results"]
    assert {t["username"] for t in listed} == {"ro-user"}, listed
    # ... but not somebody else's
    admin_token = make_token(node, description="admin's")
    r = call(node, "DELETE", f"/api/token/{admin_token['id']}", basic=ro)
    assert r.status_code in (403, 404), r.text
    assert call(node, "GET", "/api/pool", bearer=admin_token["token"]).status_code == 200

    # admin: users; no password hash is ever shown
    status, doc = node.api.get("/api/user")
    assert status == 200 and {"admin", "ro-user", "op-user"} <= {u["username"] if "username"
                                                                 in u else u.get("name")
                                                                 for u in doc["results"]}, doc
    for text in (json.dumps(doc), json.dumps(node.api.get("/api/user/ro-user")[1])):
        assert "argon2" not in text and "hash" not in text, text
    assert node.api.post("/api/user", {"username": "x2", "password": "short",
                                       "role": "operator"})[0] == 400
    assert node.api.post("/api/user", {"username": "x3", "password": "long-enough",
                                       "role": "root"})[0] == 400
    assert node.api.post("/api/user", {"username": "ro-user", "password": "long-enough",
                                       "role": "operator"})[0] == 409

    # a role change applies to every credential at once, a deleted user loses them all
    ro_sid, ro_csrf = login_ok(node, *ro)
    assert node.api.put("/api/user/ro-user", {"role": "operator"})[0] == 200
    r = call(node, "POST", "/api/healthmonitor", healthmonitor_body("promoted-hm"), basic=ro)
    assert r.status_code == 201, r.text
    r = call(node, "POST", "/api/healthmonitor", healthmonitor_body("promoted-hm2"),
             bearer=ro_token["token"])
    assert r.status_code == 201, r.text
    assert node.api.delete("/api/user/ro-user")[0] == 204
    assert call(node, "GET", "/api/pool", basic=ro).status_code == 401
    assert call(node, "GET", "/api/pool", bearer=ro_token["token"]).status_code == 401
    assert call(node, "GET", "/api/pool", cookie=ro_sid).status_code == 401


# ---------------------------------------------------------------------------
# sessions and CSRF

def test_login_session_and_csrf(node):
    r, sid, csrf = login(node, harness.ADMIN_USER, harness.ADMIN_PASSWORD)
    assert r.status_code == 200
    doc = doc_of(r)
    assert doc == {"username": "admin", "role": "admin", "csrftoken": csrf}, doc
    lines = {cookie_value(l, "sessionid") and "sessionid" or "csrftoken": l
             for l in set_cookies(r)}
    assert "HttpOnly" in lines["sessionid"] and "SameSite=Strict" in lines["sessionid"]
    # Secure exactly when the node serves HTTPS (the default; --no-tls serves plain HTTP)
    assert ("Secure" in lines["sessionid"]) == node.tls, lines["sessionid"]
    assert "HttpOnly" not in lines["csrftoken"]        # the page's script reads it
    assert len(base64.urlsafe_b64decode(sid.split(".")[2] + "==")) >= 32  # 32+ random bytes
    # a new session at every login
    sid2, csrf2 = login_ok(node)
    assert sid2 != sid and csrf2 != csrf

    r = call(node, "GET", "/api/session", cookie=sid)
    assert r.status_code == 200, r.text
    s = doc_of(r)
    assert (s["username"], s["role"], s["via"], s["csrftoken"]) == ("admin", "admin", "session", csrf)
    # the idle timeout slides: an authenticated session request refreshes the cookie
    time.sleep(0.01)
    refreshed = [cookie_value(l, "sessionid") for l in set_cookies(r) if l.startswith("sessionid=")]
    assert len(refreshed) == 1 and refreshed[0] and refreshed[0] != sid, set_cookies(r)
    assert "HttpOnly" in set_cookies(r)[0]
    assert call(node, "GET", "/api/pool", cookie=refreshed[0]).status_code == 200
    # a tampered cookie is refused
    head, mac = sid.rsplit(".", 1)
    for bad in (f"{head}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}",
                head.replace("YWRtaW4", "cm9vdA") + "." + mac, sid[:-10]):
        assert call(node, "GET", "/api/session", cookie=bad).status_code == 401, bad

    # cookie writes: X-CSRFToken required and matching, and same origin
    body = healthmonitor_body("csrf-hm")
    same_origin = node.api.base
    other_scheme = f"{'http' if node.tls else 'https'}://{node.api_address}"
    refusals = [{}, {"csrf": "0" * 64}, {"csrf": csrf2},
                {"csrf": csrf, "headers": {"Origin": EVIL_ORIGIN}},
                {"csrf": csrf, "headers": {"Origin": "null"}},
                {"csrf": csrf, "headers": {"Referer": EVIL_ORIGIN + "/ui/"}},
                {"csrf": csrf, "headers": {"Sec-Fetch-Site": "cross-site"}},
                {"csrf": csrf, "headers": {"Origin": other_scheme}}]
    for kw in refusals:
        r = call(node, "POST", "/api/healthmonitor", body, cookie=sid, **kw)
        assert r.status_code == 403, (kw, r.status_code, r.text)
        r = call(node, "DELETE", "/api/user/admin", cookie=sid, **kw)
        assert r.status_code == 403, (kw, r.status_code, r.text)
    assert "csrf-hm" not in [o["name"] for o in node.api.list_all("healthmonitor")]
    # reads need no CSRF token, whatever the origin
    assert call(node, "GET", "/api/pool", cookie=sid,
                headers={"Origin": EVIL_ORIGIN}).status_code == 200
    r = call(node, "POST", "/api/healthmonitor", body, cookie=sid, csrf=csrf,
             headers={"Origin": same_origin, "Referer": same_origin + "/ui/",
                      "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 201, r.text
    r = call(node, "DELETE", f"/api/healthmonitor/{doc_of(r)['uuid']}", cookie=sid, csrf=csrf)
    assert r.status_code == 204, r.text
    # tokens and Basic need no CSRF token (scripts)
    tok = make_token(node)["token"]
    assert call(node, "POST", "/api/healthmonitor", healthmonitor_body("csrf-tok"),
                bearer=tok).status_code == 201

    # logout: a write too (CSRF), ends the session, and only sessions log out
    r = call(node, "POST", "/api/logout", cookie=sid)
    assert r.status_code == 403, r.text
    assert call(node, "POST", "/api/logout", cookie=sid, csrf=csrf,
                headers={"Origin": EVIL_ORIGIN}).status_code == 403
    r = call(node, "POST", "/api/logout", cookie=sid, csrf=csrf)
    assert r.status_code in (200, 204), r.text
    assert any(l.startswith("sessionid=;") and "Max-Age=0" in l for l in set_cookies(r))
    for cookie in (sid, refreshed[0]):
        assert call(node, "GET", "/api/session", cookie=cookie).status_code == 401
    assert call(node, "GET", "/api/session", cookie=sid2).status_code == 200
    assert call(node, "POST", "/api/logout", bearer=tok).status_code == 400


# ---------------------------------------------------------------------------
# tokens and Basic

def test_tokens_work_until_revoked_or_expired(node):
    before = datetime.now(timezone.utc)
    r = call(node, "POST", "/api/token", {"description": "ci job", "expires_in": 60},
             basic=(harness.ADMIN_USER, harness.ADMIN_PASSWORD))
    assert r.status_code == 201, r.text
    assert "no-store" in r.headers.get("Cache-Control", "")
    tok = doc_of(r)
    assert set(tok) >= {"id", "token", "username", "expires", "description"}, tok
    assert tok["username"] == "admin" and tok["description"] == "ci job"
    assert len(tok["token"]) >= 43
    expires = parse_time(tok["expires"])
    after = datetime.now(timezone.utc)
    assert 55 <= (expires - before).total_seconds() and (expires - after).total_seconds() <= 65, \
        (before, expires)

    r = call(node, "GET", "/api/session", bearer=tok["token"])
    assert r.status_code == 200 and doc_of(r)["via"] == "token", r.text
    assert call(node, "GET", "/api/cluster", bearer=tok["token"]).status_code == 200
    # shown once: the list has its id, not the token
    listed = node.api.get("/api/token")[1]["results"]
    mine = [t for t in listed if t["id"] == tok["id"]]
    assert len(mine) == 1 and tok["token"] not in json.dumps(listed), listed
    # the default expiry is finite
    default = make_token(node)
    assert parse_time(default["expires"]) > expires

    # bad expiries
    for bad in (59, 0, -5, "60", 1.5, 10 ** 12):
        assert node.api.post("/api/token", {"expires_in": bad})[0] == 400, bad
    assert node.api.post("/api/token", {"description": 7})[0] == 400

    # revoked: refused at once
    assert node.api.delete(f"/api/token/{tok['id']}")[0] == 204
    r = call(node, "GET", "/api/session", bearer=tok["token"])
    assert r.status_code == 401, r.text
    assert call(node, "GET", "/api/session", bearer=default["token"]).status_code == 200
    assert node.api.delete("/api/token/no-such-token")[0] in (404, 400)
    # a made-up token, or one with a letter changed
    flipped = default["token"][:-1] + ("A" if default["token"][-1] != "A" else "B")
    for bad in (flipped, "", "x" * 500):
        assert call(node, "GET", "/api/pool", bearer=bad).status_code == 401



def test_token_follows_its_user(node):
    """A token answers with its user's role as the store has it now: a role change or the
    user's deletion shows on the very next request, however often the token was used."""
    make_user(node, "tok-user", "operator", "tok-pass-1")
    r = call(node, "POST", "/api/token", {"expires_in": 600}, basic=("tok-user", "tok-pass-1"))
    assert r.status_code == 201, r.text
    tok = doc_of(r)["token"]
    for _ in range(5):
        r = call(node, "GET", "/api/session", bearer=tok)
        assert r.status_code == 200 and doc_of(r)["role"] == "operator", r.text
    assert node.api.put("/api/user/tok-user", {"role": "read-only"})[0] == 200
    r = call(node, "GET", "/api/session", bearer=tok)
    assert r.status_code == 200 and doc_of(r)["role"] == "read-only", r.text
    assert call(node, "POST", "/api/healthmonitor", harness.healthmonitor_body("tok-ro"),
                bearer=tok).status_code == 403
    assert node.api.delete("/api/user/tok-user")[0] == 204
    assert call(node, "GET", "/api/session", bearer=tok).status_code == 401

def test_basic_auth(node):
    make_user(node, "basic-user", "operator", "basic-pass-1")
    r = call(node, "GET", "/api/session", basic=("basic-user", "basic-pass-1"))
    assert r.status_code == 200 and doc_of(r)["via"] == "basic", r.text
    # cached: a burst of Basic requests is not a burst of Argon2 checks, and all pass
    for _ in range(20):
        assert call(node, "GET", "/api/pool", basic=("basic-user", "basic-pass-1")).status_code == 200
    src = "127.0.3.1"  # failures count against the source address
    r = call(node, "GET", "/api/pool", basic=("basic-user", "wrong-pass"), source=src)
    assert r.status_code == 401 and r.headers.get("WWW-Authenticate", "").startswith("Basic")
    r = call(node, "GET", "/api/pool", basic=("no-such-user", "basic-pass-1"), source=src)
    assert r.status_code == 401
    r = call(node, "POST", "/api/healthmonitor", healthmonitor_body("basic-hm"),
             basic=("basic-user", "basic-pass-1"))
    assert r.status_code == 201, r.text
    # a password change applies at once on this node
    assert node.api.put("/api/user/basic-user", {"password": "basic-pass-2"})[0] == 200
    assert call(node, "GET", "/api/pool", basic=("basic-user", "basic-pass-1"),
                source=src).status_code == 401
    assert call(node, "GET", "/api/pool", basic=("basic-user", "basic-pass-2")).status_code == 200


# ---------------------------------------------------------------------------
# brute force

def test_lockout_after_five_failures(cluster_factory):
    """Five wrong passwords for one account from one address lock that pair (address,
    account) for 15 minutes, even with the right password; the account from another
    address, and other accounts from that address, are not refused."""
    node = cluster_factory(1).nodes[0]
    make_user(node, "victim", "read-only", "victim-password")
    src, other_src, third_src = "127.0.4.1", "127.0.4.2", "127.0.4.3"
    durations = []
    for i in range(5):
        start = time.monotonic()
        r, sid, _ = login(node, "victim", f"guess-{i}", source=src)
        durations.append(time.monotonic() - start)
        assert r.status_code == 401 and sid is None, (i, r.status_code, r.text)
    # failures are slowed down, more and more
    assert durations[0] >= 0.2 and durations[3] >= 0.9 and durations[4] >= 0.9, durations

    # locked: that account from that address, even with the right password (Basic too)
    start = time.monotonic()
    r, sid, _ = login(node, "victim", "victim-password", source=src)
    assert r.status_code == 429 and sid is None, (r.status_code, r.text)
    assert time.monotonic() - start < 1.0   # refused before any password check
    r = call(node, "GET", "/api/pool", basic=("victim", "victim-password"), source=src)
    assert r.status_code == 429, r.text
    # not refused: the account from another address, another account from that address
    r, sid, _ = login(node, "victim", "victim-password", source=other_src)
    assert r.status_code == 200 and sid, (r.status_code, r.text)
    r = call(node, "GET", "/api/pool", basic=("victim", "victim-password"), source=third_src)
    assert r.status_code == 200, r.text
    r, _, _ = login(node, harness.ADMIN_USER, harness.ADMIN_PASSWORD, source=src)
    assert r.status_code == 200, r.text

    def recorded():
        locked = [e for e in events_of(node, "USER_LOCKED") if e["obj_name"] == "victim"]
        failed = [e for e in events_of(node, "USER_LOGIN_FAILED") if e["obj_name"] == "victim"]
        return (locked, failed) if locked and len(failed) >= 5 else None
    locked, failed = wait_until(recorded, 10, "USER_LOCKED and 5 USER_LOGIN_FAILED for victim")
    assert len(locked) == 1, locked
    assert locked[0]["module"] == "AUTH" and locked[0]["event_details"]["client_ip"] == src
    assert all(e["module"] == "AUTH" for e in failed)
    assert "victim-password" not in json.dumps(failed + locked)
    assert wait_until(lambda: [e for e in events_of(node, "USER_LOGIN")
                               if e["obj_name"] == "admin"], 10, "a USER_LOGIN event for admin")


def test_wrong_passwords_from_many_addresses_never_lock_the_account_out(cluster_factory):
    """The denial of service of a per-account lock: five wrong passwords for admin from five
    addresses locked admin for everyone. Now each address has its own count; the account is
    slowed down (its failures answer later) but its right password from an address that
    has not failed is taken at once."""
    node = cluster_factory(1).nodes[0]
    for i in range(8):
        r, _, _ = login(node, harness.ADMIN_USER, f"guess-{i}", source=f"127.0.4.{20 + i}")
        assert r.status_code == 401, (i, r.status_code, r.text)
    start = time.monotonic()
    r, sid, _ = login(node, harness.ADMIN_USER, harness.ADMIN_PASSWORD, source="127.0.4.40")
    assert r.status_code == 200 and sid, (r.status_code, r.text)
    assert time.monotonic() - start < 1.0
    # the account's failures slow the next wrong guess, from a fresh address too
    start = time.monotonic()
    r, _, _ = login(node, harness.ADMIN_USER, "guess-x", source="127.0.4.41")
    assert r.status_code == 401 and time.monotonic() - start >= 0.9, time.monotonic() - start


def test_an_address_failing_for_many_accounts_is_locked(cluster_factory):
    """Twenty failures from one address, whatever the accounts, lock that address (a
    spray across usernames); other addresses are not touched."""
    node = cluster_factory(1).nodes[0]
    src = "127.0.4.60"
    for i in range(20):
        r, _, _ = login(node, f"sprayed-{i}", "guess", source=src)
        assert r.status_code == 401, (i, r.status_code, r.text)
    r, _, _ = login(node, harness.ADMIN_USER, harness.ADMIN_PASSWORD, source=src)
    assert r.status_code == 429, r.text
    r, _, _ = login(node, harness.ADMIN_USER, harness.ADMIN_PASSWORD, source="127.0.4.61")
    assert r.status_code == 200, r.text


def test_a_flood_of_bad_logins_does_not_starve_good_ones(cluster_factory, monkeypatch):
    """With the real Argon2id cost (~0.1 s and 64 MiB a check, two at once), 100 concurrent
    bad logins from 25 addresses that have failed before filled the password-check queue and
    turned every good login into 429. Checks from addresses without failures go first, and
    take the place of a suspect one when the queue is full."""
    monkeypatch.setattr(harness, "TEST_AUTH_FLAGS", ())
    node = cluster_factory(1).nodes[0]
    flood_sources = [f"127.0.8.{i}" for i in range(1, 26)]
    for src in flood_sources:              # each address fails once: now suspect
        r, _, _ = login(node, f"ghost-{src}", "guess", source=src)
        assert r.status_code == 401, (src, r.status_code, r.text)
    results = []
    lock = threading.Lock()

    def bad(i):
        src = flood_sources[i % len(flood_sources)]
        try:
            status = login(node, f"ghost-{i}", "guess", source=src)[0].status_code
        except requests.RequestException:   # waited its turn past the client's timeout
            status = "timeout"
        with lock:
            results.append(status)

    threads = [threading.Thread(target=bad, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(results) >= 10, 30, "the flood under way")
        start = time.monotonic()
        r, sid, _ = login(node, harness.ADMIN_USER, harness.ADMIN_PASSWORD, source="127.0.8.200")
        took = time.monotonic() - start
    finally:
        for t in threads:
            t.join(timeout=60)
    assert r.status_code == 200 and sid, (r.status_code, r.text, took)
    assert set(results) <= {401, 429, "timeout"}, results


def test_a_stop_during_a_flood_answers_every_waiting_login(cluster_factory, monkeypatch):
    """SIGTERM while password checks wait in the queue, hash on the thread pool or wait out
    a failure's delay: each is answered (503 for the unchecked ones) or its connection
    closed, and the node exits 0.
    It aborted in libmicrohttpd ("MHD_stop_daemon() called while we have suspended
    connections"): the queued checks were freed without an answer."""
    monkeypatch.setattr(harness, "TEST_AUTH_FLAGS", ())
    node = cluster_factory(1).nodes[0]
    results = []
    lock = threading.Lock()

    def bad(i):
        try:
            status = login(node, f"ghost-{i}", "guess", source=f"127.0.9.{i % 50 + 1}")[0].status_code
        except requests.RequestException as e:
            status = type(e).__name__
        with lock:
            results.append(status)

    threads = [threading.Thread(target=bad, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    wait_until(lambda: len(results) >= 3, 30, "the first answers (others still waiting)")
    assert node.term() == 0, node.stderr_tail()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 60
    assert set(results) <= {401, 429, 503, "ConnectionError"}, results
    # the unanswered ones were still waiting: answered 503 by auth_close, but the server
    # stopping right after closes their connections before the answer is written
    assert "ConnectionError" in results or 503 in results, results
    assert "suspended connections" not in node.stderr_path.read_text()


def test_unknown_users_cost_the_same_time(cluster_factory):
    """A wrong password for a real user and any password for an unknown one take about the
    same time (medians compared loosely). Each attempt comes from its own address and
    names its own user, so that every one is a first failure (same slowing)."""
    node = cluster_factory(1).nodes[0]
    rounds = 5
    for i in range(rounds):
        make_user(node, f"timing-{i}", "read-only", f"timing-password-{i}")
    known, unknown = [], []
    for i in range(rounds):
        for kind, user, out in (("known", f"timing-{i}", known), ("unknown", f"ghost-{i}", unknown)):
            source = f"127.0.5.{2 * i + (kind == 'unknown') + 1}"
            start = time.monotonic()
            r, _, _ = login(node, user, "not-the-password", source=source)
            out.append(time.monotonic() - start)
            assert r.status_code == 401, (user, r.status_code, r.text)
    mk, mu = statistics.median(known), statistics.median(unknown)
    assert abs(mk - mu) <= 0.1 + 0.25 * max(mk, mu), (known, unknown)


# ---------------------------------------------------------------------------
# several nodes

def test_session_works_on_every_node_and_survives_the_leader(cluster_factory):
    cluster = cluster_factory(3)
    n1, n2, n3 = cluster.nodes
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    sid, csrf = login_ok(follower)
    for n in cluster.nodes:
        r = call(n, "GET", "/api/session", cookie=sid)
        assert r.status_code == 200 and doc_of(r)["csrftoken"] == csrf, (n, r.text)
    # a cookie write on another follower is forwarded to the leader as this user
    other = next(n for n in cluster.nodes if n not in (leader, follower))
    r = call(other, "POST", "/api/healthmonitor", healthmonitor_body("multi-hm"), cookie=sid,
             csrf=csrf)
    assert r.status_code == 201, r.text
    # a token made with the session (on the leader: see test_follower_takes_token_and_logout)
    r = call(leader, "POST", "/api/token", {"description": "from a session"}, cookie=sid,
             csrf=csrf)
    assert r.status_code == 201, r.text
    tok = doc_of(r)["token"]
    wait_until(lambda: call(follower, "GET", "/api/session", bearer=tok).status_code == 200, 10,
               "the token to work on a follower")

    # the leader dies: the session still works on the others, reads at once, writes
    # once there is a new leader
    leader.kill9()
    survivors = [n for n in cluster.nodes if n is not leader]
    for n in survivors:
        r = call(n, "GET", "/api/session", cookie=sid)
        assert r.status_code == 200, (n, r.text)
    new_leader = cluster.wait_leader(20)
    assert new_leader is not leader

    def written():
        r = call(survivors[0], "POST", "/api/healthmonitor", healthmonitor_body("after-failover"),
                 cookie=sid, csrf=csrf)
        assert r.status_code in (201, 409, 503), r.text
        return r.status_code in (201, 409)
    wait_until(written, 20, "a session write after the failover")

    # logout on one node ends the session on every node, the restarted old leader too
    # (sent to the new leader: see test_follower_takes_token_and_logout)
    new_leader = cluster.wait_leader(20)
    r = call(new_leader, "POST", "/api/logout", cookie=sid, csrf=csrf)
    assert r.status_code in (200, 204), r.text
    for n in survivors:
        wait_until(lambda: call(n, "GET", "/api/session", cookie=sid).status_code == 401, 10,
                   f"{n.label} to refuse the logged-out session")
    leader.start()
    wait_until(lambda: call(leader, "GET", "/api/session", cookie=sid).status_code == 401, 20,
               f"the restarted {leader.label} to refuse the logged-out session")
    assert call(leader, "GET", "/api/session", bearer=tok).status_code == 200


def test_follower_takes_token_and_logout(cluster_factory):
    """`vigil login` (POST /api/token) and the UI's logout work on whichever node is asked."""
    cluster = cluster_factory(3)
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    sid, csrf = login_ok(follower)
    r = call(follower, "POST", "/api/token", {"description": "on a follower"},
             basic=(harness.ADMIN_USER, harness.ADMIN_PASSWORD))
    assert r.status_code == 201, r.text
    tok = doc_of(r)
    assert tok["username"] == "admin"
    wait_until(lambda: all(call(n, "GET", "/api/session", bearer=tok["token"]).status_code == 200
                           for n in cluster.nodes), 10, "the follower's token on every node")
    r = call(follower, "POST", "/api/token", {"description": "session on a follower"},
             cookie=sid, csrf=csrf)
    assert r.status_code == 201, r.text
    r = call(follower, "POST", "/api/logout", cookie=sid, csrf=csrf)
    assert r.status_code in (200, 204), r.text
    for n in cluster.nodes:
        wait_until(lambda: call(n, "GET", "/api/session", cookie=sid).status_code == 401, 10,
                   f"{n.label} to refuse the logged-out session")


def test_password_change_applies_on_every_node(cluster_factory):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    make_user(leader, "rotating", "operator", "rotating-pass-1")
    for n in cluster.nodes:  # each node checks (and caches) the first password
        wait_until(lambda: call(n, "GET", "/api/pool", basic=("rotating", "rotating-pass-1"))
                   .status_code == 200, 10, f"{n.label} to know the new user")
    assert leader.api.put("/api/user/rotating", {"password": "rotating-pass-2"})[0] == 200
    for n in cluster.nodes:
        wait_until(lambda: call(n, "GET", "/api/pool", basic=("rotating", "rotating-pass-2"))
                   .status_code == 200, 10, f"{n.label} to take the new password")
        r = call(n, "GET", "/api/pool", basic=("rotating", "rotating-pass-1"), source="127.0.7.1")
        assert r.status_code == 401, (n.label, r.status_code, "the old password still works")


def test_login_and_reads_work_without_quorum(cluster_factory):
    cluster = cluster_factory(3)
    survivor = cluster.nodes[2]
    make_user(cluster.leader(), "night-shift", "read-only", "night-shift-pass")
    old_sid, _ = login_ok(survivor)
    tok = make_token(cluster.leader())["token"]
    wait_until(lambda: call(survivor, "GET", "/api/session",
                            basic=("night-shift", "x-wrong-x"), source="127.0.6.1").status_code == 401
               and call(survivor, "GET", "/api/user/night-shift", bearer=tok).status_code == 200,
               10, "the new user and token on the survivor")
    for n in cluster.nodes[:2]:
        n.kill9()

    deadline = 5.0
    start = time.monotonic()
    r, sid, csrf = login(survivor, harness.ADMIN_USER, harness.ADMIN_PASSWORD,
                         )
    assert r.status_code == 200 and sid, (r.status_code, r.text)
    assert time.monotonic() - start < deadline
    checks = [("new session", {"cookie": sid}), ("old session", {"cookie": old_sid}),
              ("token", {"bearer": tok}),
              ("Basic", {"basic": ("night-shift", "night-shift-pass")})]
    for what, kw in checks:
        for path in ("/api/pool", "/api/cluster/runtime", "/api/session"):
            start = time.monotonic()
            r = call(survivor, "GET", path, **kw)
            assert r.status_code == 200, (what, path, r.status_code, r.text)
            assert time.monotonic() - start < deadline, (what, path)
    r, sid2, _ = login(survivor, "night-shift", "night-shift-pass")
    assert r.status_code == 200 and doc_of(r)["role"] == "read-only", r.text
    # a bad password is still a bad password
    r = call(survivor, "GET", "/api/pool", basic=("night-shift", "wrong"), source="127.0.6.2")
    assert r.status_code == 401, r.text
    # writes are refused for want of quorum, not for want of credentials
    r = call(survivor, "POST", "/api/healthmonitor", healthmonitor_body("no-quorum"),
             cookie=sid, csrf=csrf, timeout=(2.0, 15.0))
    assert r.status_code == 503, r.text


# ---------------------------------------------------------------------------
# TLS

def fingerprint(pem):
    der = ssl.PEM_cert_to_DER_cert(pem)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_tls_with_a_given_certificate(cluster_factory, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=vigil-test-operator",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    node = cluster_factory.node(1, extra_flags=["--tls-cert", cert, "--tls-key", key], tls=True)
    node.start()
    wait_until(lambda: node.cluster_record(), 20, "the node to register")
    ca = str(cert)
    r = call(node, "GET", "/api/healthz", verify=ca)
    assert r.status_code == 200, r.text
    with pytest.raises(requests.exceptions.SSLError):
        call(node, "GET", "/api/healthz", verify=True)   # not a public CA
    assert call(node, "GET", "/api/pool", verify=ca).status_code == 401
    assert call(node, "GET", "/api/pool", verify=ca,
                basic=(harness.ADMIN_USER, harness.ADMIN_PASSWORD)).status_code == 200
    r, sid, csrf = login(node, harness.ADMIN_USER, harness.ADMIN_PASSWORD, verify=ca)
    assert r.status_code == 200
    assert all("Secure" in l for l in set_cookies(r)), set_cookies(r)
    r = call(node, "POST", "/api/healthmonitor", healthmonitor_body("tls-hm"), cookie=sid,
             csrf=csrf, verify=ca, headers={"Origin": f"https://{node.api_address}"})
    assert r.status_code == 201, r.text
    # the same-origin check knows the scheme
    r = call(node, "POST", "/api/healthmonitor", healthmonitor_body("tls-hm2"), cookie=sid,
             csrf=csrf, verify=ca, headers={"Origin": f"http://{node.api_address}"})
    assert r.status_code == 403, r.text
    assert fingerprint(cert.read_text()) in node.stderr_path.read_text()
    # plain HTTP gets no API answer on the HTTPS port
    try:
        r = requests.get(f"http://{node.api_address}/api/healthz", timeout=5)
        assert r.status_code >= 400, r.text
    except requests.exceptions.RequestException:
        pass
    # the operator's key is not copied into the cluster's credentials
    creds = (node.data_dir / "cluster-credentials.json").read_text()
    assert key.read_text().strip() not in creds


def test_tls_with_the_clusters_self_signed_certificate(cluster_factory, tmp_path):
    cluster = cluster_factory(3, tls=True)
    pems = wait_until(lambda: (lambda p: p if all(p) and len(set(p)) == 1 else None)(
        [n.cluster_tls_cert() for n in cluster.nodes]), 20,
        "every node to keep the same cluster certificate")
    pem = pems[0]
    ca = tmp_path / "cluster-ca.pem"
    ca.write_text(pem)
    for n in cluster.nodes:
        mode = (n.data_dir / "cluster-credentials.json").stat().st_mode & 0o777
        assert mode == 0o600, oct(mode)
        r = call(n, "GET", "/api/cluster/runtime", verify=str(ca),
                 basic=(harness.ADMIN_USER, harness.ADMIN_PASSWORD))
        assert r.status_code == 200, r.text
        wait_until(lambda: fingerprint(pem) in n.stderr_path.read_text(), 10,
                   f"{n.label} to log the certificate's fingerprint")
    # 127.0.0.1 is in the certificate's names (verified above by host name); and curl agrees
    from cryptography import x509
    names = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    out = subprocess.run(["curl", "-sS", "--fail", "--cacert", str(ca), "-u",
                          f"{harness.ADMIN_USER}:{harness.ADMIN_PASSWORD}",
                          f"https://{follower.api_address}/api/session"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and json.loads(out.stdout)["username"] == "admin", out.stderr
    # a follower forwards a write to the leader over TLS (verified, with its node credential)
    sid, csrf = login_ok(follower, verify=str(ca))
    r = call(follower, "POST", "/api/healthmonitor", healthmonitor_body("tls-forwarded"),
             cookie=sid, csrf=csrf, verify=str(ca))
    assert r.status_code == 201, r.text
    assert call(leader, "GET", f"/api/healthmonitor/{doc_of(r)['uuid']}", verify=str(ca),
                cookie=sid).status_code == 200
