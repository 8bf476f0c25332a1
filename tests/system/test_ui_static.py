"""Issue 14: the web UI's files under /ui/, served by every node without authentication
(the contract's open endpoints), from the table compiled into vigild: content types,
caching (ETag, 304), the headers that keep the page to itself (CSP and others), and no way
out of the table (traversal attempts and unknown names are 404), over TLS as users run it.

Run: /usr/bin/python3 -m pytest tests/system/test_ui_static.py
"""

import socket
import ssl

import pytest
import requests

import harness
from cluster_helpers import wait_stable

FILES = {"": "text/html", "index.html": "text/html", "app.js": "text/javascript",
         "app.css": "text/css"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    base = tmp_path_factory.mktemp("ui-static")
    registry = harness.ProcessRegistry(base / "logs")
    try:
        cluster = harness.Cluster(registry, base, n=3).start()
        wait_stable(cluster)
        yield cluster.nodes
    finally:
        registry.stop_all()


def get(node, path, **kw):
    return requests.get(node.api.base + path, verify=node.api.verify, timeout=10,
                        allow_redirects=False, **kw)


def raw_get(node, target):
    """GET TARGET sent as it is (no client-side normalisation of dot segments); the status."""
    host, port = node.api_address.split(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=host) as t:
            t.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    break
                data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_every_node_serves_the_files_without_login(nodes):
    for node in nodes:
        for name, ctype in FILES.items():
            r = get(node, "/ui/" + name)
            assert r.status_code == 200, (node.id, name, r.status_code, r.text[:200])
            assert r.headers["Content-Type"].startswith(ctype), (name, r.headers)
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["Cache-Control"] == "no-cache"
            assert r.headers["ETag"].startswith('"')
            assert len(r.content) > 100
    page = get(nodes[0], "/ui/").text
    assert 'src="app.js"' in page and 'href="app.css"' in page
    assert "http://" not in page and "https://" not in page    # nothing fetched from elsewhere


def test_html_carries_a_strict_content_security_policy(nodes):
    csp = get(nodes[0], "/ui/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"        # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp


def test_redirects_to_the_dashboard(nodes):
    for path in ("/", "/ui"):
        r = get(nodes[1], path)
        assert r.status_code == 302 and r.headers["Location"] == "/ui/", (path, r.status_code)


def test_revalidation_answers_304(nodes):
    first = get(nodes[2], "/ui/app.js")
    again = get(nodes[2], "/ui/app.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    stale = get(nodes[2], "/ui/app.js", headers={"If-None-Match": '"not-the-tag"'})
    assert stale.status_code == 200 and stale.content == first.content
    # the same build on every node: the same tag
    assert get(nodes[0], "/ui/app.js").headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize("target", [
    "/ui/../api/cluster", "/ui/%2e%2e/api/cluster", "/ui/..%2fapi%2fcluster",
    "/ui/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/ui/../../etc/passwd", "/ui//etc/passwd",
    "/ui/app.js/", "/ui/./app.js", "/ui/APP.JS", "/ui/app.js%00.html", "/ui/nope.html",
    "/ui/src/main.js", "/ui/%5c..%5capi", "/ui/" + "a" * 3000,
])
def test_no_path_leaves_the_table(nodes, target):
    status, data = raw_get(nodes[0], target)
    # 404 from the UI's table (or 400/414 from the HTTP layer for a malformed target);
    # never 200, never anything the API would have answered (401 for /api/cluster)
    assert status in (400, 404, 414), (target, status, data[:300])
    assert b"root:" not in data


def test_writes_to_ui_paths_are_refused(nodes):
    r = requests.post(nodes[0].api.base + "/ui/", verify=nodes[0].api.verify, timeout=10)
    # the gate answers first: /ui/ is open for GET and HEAD only (this tests the gate)
    assert r.status_code == 401
    r = requests.post(nodes[0].api.base + "/ui/", verify=nodes[0].api.verify, timeout=10,
                      auth=nodes[0].api.auth)
    assert r.status_code == 405, (r.status_code, r.text)


def test_head_gives_headers_only(nodes):
    r = requests.head(nodes[0].api.base + "/ui/app.css", verify=nodes[0].api.verify, timeout=10)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Type"].startswith("text/css")


def test_runtime_node_rows_carry_what_the_dashboard_shows(nodes):
    """node_states: last_contact, up_since (a peer's as it reports itself) and
    holds_cluster_ip (no --vip here: nobody)."""
    from cluster_helpers import parse_time_ms, now_ms
    own = {}
    for node in nodes:
        rt = node.runtime()
        me = next(e for e in rt["node_states"] if e["id"] == node.id)
        own[node.id] = me["up_since"]
        assert abs(parse_time_ms(me["last_contact"]) - now_ms()) < 5000, me
    for node in nodes:
        for e in node.runtime()["node_states"]:
            assert e["up_since"] == own[e["id"]], (node.id, e)
            assert e["holds_cluster_ip"] is False
            assert now_ms() - parse_time_ms(e["last_contact"]) < 5000, (node.id, e)
