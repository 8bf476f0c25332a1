"""Issue 4 item 3 and issue 5 item 8: the `vigil` command-line client.

Two kinds of tests:
- against a real one-node vigild (the `node` fixture): cluster status, known-hosts,
  list / show / create / delete, --json equal to the API's answer, API errors;
- against `StubApi`, a tiny in-process http.server that serves canned answers. These
  check the CLI's own behaviour (rendering, paging, headers, redirects, timeouts,
  hostile text, TLS flags), NOT the controller: `/api/event` was written after the CLI,
  and a stub is the only way to force a redirect, a slow answer or a 3-page event log.
  `test_events_against_the_controller` checks `events` against the real vigild.

Authentication is always on in vigild: tests against a real node take the `token`
fixture (an API token made with the harness's admin Basic credentials, passed to every run
as $VIGIL_TOKEN), or log in with `vigil login` itself.

Every `vigil` run goes through the harness's ProcessRegistry (stopped by PID when it
overruns); the environment it inherits is cleaned of VIGIL_*, XDG_CONFIG_HOME and proxy
variables, and HOME points at the test's tmp dir, by the `cli` fixture so that the
machine's settings (or a token kept by a real `vigil login`) cannot change a result.
"""

import base64
import json
import os
import re
import ssl
import stat
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import harness
from harness import (healthmonitor_body, pool_body, serviceengine_body,
                     virtualservice_body, wait_until)

VIGIL = Path(os.environ.get("VIGIL_CLI", harness.REPO_ROOT / "build" / "src" / "cli" / "vigil"))

# What a usage error prints on stderr (besides the reason).
USAGE_LINE = "usage: vigil "

CLEARED_ENV = ("VIGIL_CONTROLLER", "VIGIL_TOKEN", "XDG_CONFIG_HOME", "http_proxy", "HTTP_PROXY", "https_proxy",
               "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")

NODE_HEADERS = ["ID", "NAME", "ROLE", "STATE", "APPLIED", "API"]
HISTORY_HEADERS = ["TIME", "STATUS", "REASON"]
EVENT_HEADERS = ["TIME", "EVENT", "MODULE", "OBJECT", "DESCRIPTION"]
SE_HEADERS = ["NAME", "UUID", "SE_STATE", "OPER_STATE", "CONTROLLER_NODE", "HEARTBEAT_AGE",
              "CONFIG_VERSION"]
KNOWN_HOSTS_LINE = re.compile(r"^\[127\.0\.0\.1\]:(\d+) ssh-ed25519 (AAAA[A-Za-z0-9+/=]+)$")


# ---------------------------------------------------------------------------
# running vigil

class Cli:
    """Runs the vigil binary to completion; returns (rc, stdout, stderr)."""

    def __init__(self, registry, home):
        self.registry = registry
        self.home = Path(home)    # $HOME of every run

    def __call__(self, *args, timeout=20.0, input=None):
        """`vigil ARGS`; INPUT (text) is its stdin (none: /dev/null)."""
        argv = [str(VIGIL)] + [str(a) for a in args]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None
                                else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        self.registry.procs.append(("vigil", proc))
        try:
            out, err = proc.communicate(input.encode() if input is not None else None,
                                        timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise harness.HarnessError(f"{' '.join(argv)} still running after {timeout}s; "
                                       f"stderr: {err.decode(errors='replace')[-2000:]}")
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    @property
    def token_file(self):
        """Where `vigil login` keeps its token for this HOME (no XDG_CONFIG_HOME)."""
        return self.home / ".config" / "vigil" / "token"

    def at(self, target, *args, **kw):
        """`vigil --controller URL ARGS` for TARGET, a harness.Node (its own scheme; over
        HTTPS, as users run it, with `--cacert` naming the cluster's certificate) or a
        plain-HTTP "HOST:PORT" (the stub servers)."""
        return self(*controller_flags(target), *args, **kw)


def controller_flags(target):
    """The flags that point `vigil` at TARGET (see Cli.at)."""
    if isinstance(target, str):
        return ["--controller", f"http://{target}"]
    flags = ["--controller", target.api.base]
    if target.tls:
        flags += ["--cacert", target.ca_file()]
    return flags


@pytest.fixture
def cli(request, tmp_path, monkeypatch):
    if not VIGIL.exists():
        pytest.fail(f"vigil not built: {VIGIL} is missing (run `ninja -C build`)",
                    pytrace=False)
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    registry = harness.ProcessRegistry(tmp_path / "cli-logs")
    request.node._vigil_registries = getattr(request.node, "_vigil_registries", [])
    request.node._vigil_registries.append(registry)
    try:
        yield Cli(registry, home)
    finally:
        registry.stop_all()


def make_token(node, **body):
    """A new API token for the harness's admin (made with its Basic credentials)."""
    status, doc = node.api.post("/api/token", body or {"description": "test_cli"})
    assert status == 201 and doc.get("token"), (status, doc)
    return doc


@pytest.fixture
def token(cli, node, monkeypatch):
    """An admin API token for `node`, given to every `vigil` run as $VIGIL_TOKEN."""
    doc = make_token(node)
    monkeypatch.setenv("VIGIL_TOKEN", doc["token"])
    return doc["token"]


def bearer_status(node, token, path="/api/session"):
    """The status of GET PATH on NODE with `Authorization: Bearer TOKEN` (no Basic)."""
    api = harness.Api(node.api_address, auth=None, scheme=node.api.base.split(":")[0],
                      verify=node.api.verify)
    return api.get(path, headers={"Authorization": f"Bearer {token}"})


def table_rows(text, headers):
    """The rows (lists of cells) of the table in TEXT whose header line is HEADERS.

    Cells are split on runs of 2+ spaces (the CLI separates columns by at least two
    spaces and cells hold no double spaces in these tests).
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.split(r" {2,}", line.strip()) == headers:
            rows = []
            for row in lines[i + 1:]:
                if not row.strip():
                    break
                rows.append(re.split(r" {2,}", row.strip()))
            return rows
    raise AssertionError(f"no table with headers {headers} in:\n{text}")


def field(text, label):
    """The value of a `Label:   value` line of `cluster status`."""
    for line in text.splitlines():
        if line.startswith(label + ":"):
            return line[len(label) + 1:].strip()
    raise AssertionError(f"no {label}: line in:\n{text}")


def wait_ready(node, timeout=20.0):
    return wait_until(lambda: (lambda rt: rt if rt["cluster_state"]["status"] == "Ready"
                               else None)(node.runtime()),
                      timeout, f"{node.label} to report Ready")


# ---------------------------------------------------------------------------
# a stub REST API (for the CLI's rendering and transport, not the controller)

class StubApi:
    """An http.server on 127.0.0.1 answering from `routes`: {path: handler}.

    handler(query: dict, headers) returns (status, body) with body a dict/list (sent as
    JSON), a str/bytes (sent as is) or None, or (status, body, extra_headers).
    Every request is recorded in `requests` as (method, path, query, headers).
    """

    def __init__(self, tls_cert=None, tls_key=None):
        self.routes = {}
        self.requests = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _answer(self):
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                stub.requests.append((self.command, parts.path, query, dict(self.headers)))
                handler = stub.routes.get(parts.path)
                if handler is None:
                    result = (404, {"error": f"no such resource: {parts.path}"})
                else:
                    result = handler(query, self.headers)
                status, body = result[0], result[1]
                extra = result[2] if len(result) > 2 else {}
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                    ctype = "application/json"
                elif body is None:
                    data = b""
                    ctype = "application/json"
                else:
                    data = body.encode() if isinstance(body, str) else body
                    ctype = "text/plain"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self.port = harness.allocate_port()
        self.server = ThreadingHTTPServer((harness.HOST, self.port), Handler)
        self.server.daemon_threads = True
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_cert, tls_key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return harness.addr(self.port)

    def requests_to(self, path):
        return [r for r in self.requests if r[1] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    s = StubApi()
    try:
        yield s
    finally:
        s.close()


def paged(items):
    """A handler serving ITEMS as a paged collection (page from 1, page_size max 1000)."""
    def handler(query, headers):
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("page_size", "100"))
        except ValueError:
            return 400, {"error": "page: not a number"}
        if page < 1 or not 1 <= size <= 1000:
            return 400, {"error": "page_size: must be a whole number from 1 to 1000"}
        start = (page - 1) * size
        return 200, {"count": len(items), "results": items[start:start + size]}
    return handler


def make_event(i, event_id="CONTROLLER_NODE_LEFT", **over):
    ev = {"uuid": f"00000000-0000-4000-8000-{i:012d}", "event_id": event_id,
          "report_timestamp": f"2026-11-28T06:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
          "module": "CLUSTERMGR", "obj_type": "cluster", "obj_name": f"node-{i}",
          "event_description": f"event number {i}",
          "event_details": {"node_name": f"node-{i}", "ip": "127.0.0.1",
                            "role": "CLUSTER_FOLLOWER"}}
    ev.update(over)
    return ev


# ---------------------------------------------------------------------------
# usage (no controller needed)

def test_help_exits_0(cli):
    rc, out, err = cli("--version")
    assert rc == 0 and out.startswith("vigil "), (out, err)
    rc, out, err = cli("--help")
    assert rc == 0, err
    for word in ("cluster status", "cluster known-hosts", "events", "--controller", "--json",
                 "--token", "--cacert", "--insecure", "create --file", "login", "--username",
                 "logout", "VIGIL_TOKEN", ".config/vigil/token",
                 "https://127.0.0.1:8080"):
        assert word in out, f"--help does not mention {word!r}:\n{out}"


@pytest.mark.parametrize("args,reason", [
    ([], "no command"),
    (["frobnicate"], "frobnicate"),
    (["cluster"], "cluster"),
    (["cluster", "explode"], "explode"),
    (["pool"], "pool"),
    (["pool", "show"], "NAME"),
    (["pool", "delete"], "NAME"),
    (["pool", "create"], "--file"),
    (["pool", "list", "extra"], "extra"),
    (["pool", "list", "--type", "X"], "--type"),
    (["events", "--file", "x.json"], "--file"),
    (["--bogus", "pool", "list"], "--bogus"),
    (["pool", "list", "--controller"], "--controller"),
    (["--controller", "ftp://127.0.0.1:1", "pool", "list"], "http://"),
    (["--controller", "127.0.0.1:8080", "pool", "list"], "http://"),
    (["--timeout", "0", "pool", "list"], "--timeout"),
    (["--json=yes", "pool", "list"], "--json"),
    (["login", "extra"], "extra"),
    (["logout", "now"], "now"),
    (["pool", "list", "--username", "bob"], "--username"),
    (["logout", "--username", "bob"], "--username"),
    (["login", "--username", "a:b"], "--username"),
    (["login", "--username", ""], "--username"),
    (["--token", "", "pool", "list"], "--token"),
])
def test_bad_usage_exits_2_with_usage_line(cli, args, reason):
    rc, out, err = cli(*args)
    assert rc == 2, (args, rc, out, err)
    assert err.startswith("vigil: "), err
    assert reason in err.splitlines()[0], err
    assert USAGE_LINE in err, err
    assert out == ""


# ---------------------------------------------------------------------------
# an unreachable controller

def test_unreachable_controller_exits_1_with_the_reason(cli):
    port = harness.allocate_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    for args in (["cluster", "status"], ["pool", "list"], ["events"],
                 ["cluster", "known-hosts"], ["healthmonitor", "delete", "x"]):
        rc, out, err = cli("--controller", url, *args)
        assert rc == 1, (args, rc, err)
        assert out == "", (args, out)
        assert err.strip() == f"vigil: cannot reach {url}: Connection refused", (args, err)


def test_default_controller_comes_from_the_environment(cli, monkeypatch, node, token):
    dead = f"http://127.0.0.1:{harness.allocate_port()}"
    monkeypatch.setenv("VIGIL_CONTROLLER", dead)
    rc, _, err = cli("pool", "list")
    assert rc == 1 and f"cannot reach {dead}" in err, err
    # the flag wins over the environment
    rc, out, err = cli.at(node, "pool", "list")
    assert rc == 0, err
    monkeypatch.setenv("VIGIL_CONTROLLER", f"{node.api.base}/")
    rc, out, err = cli(*controller_flags(node)[2:], "pool", "list")
    assert rc == 0, err
    assert out.split() == ["NAME", "UUID", "LB_ALGORITHM", "SERVERS", "HEALTH_MONITORS"]


# ---------------------------------------------------------------------------
# against a real one-node controller

def test_cluster_status_table(cli, node, token):
    wait_ready(node)
    rc, out, err = cli.at(node, "cluster", "status")
    assert rc == 0, err
    assert err == ""
    assert field(out, "Status") == "Ready"
    assert field(out, "State") == "CLUSTER_UP_NO_HA"
    assert field(out, "Leader") == "node-1 (id 1)"
    assert re.fullmatch(r"\d+", field(out, "Term")), field(out, "Term")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", field(out, "Since"))
    assert field(out, "Reason") not in ("", "-")
    cluster = node.api.get("/api/cluster")[1]
    assert field(out, "Cluster") == f"{cluster['name']} (uuid {cluster['uuid']})"

    nodes = table_rows(out, NODE_HEADERS)
    assert len(nodes) == 1, nodes
    node_id, name, role, state, applied, api = nodes[0]
    assert (node_id, name, role, state, api) == ("1", "node-1", "CLUSTER_LEADER",
                                                 "CLUSTER_ACTIVE", node.api_address)
    assert int(applied) >= 1

    history = table_rows(out, HISTORY_HEADERS)
    assert history, out
    assert all(row[1] in harness.STATUS_WORDS for row in history), history
    assert history[0][1] == "Not Responsive"  # a node starts there
    assert history[-1][1] == "Ready"
    assert "oldest first" in out


def test_cluster_status_json_is_the_runtime_answer(cli, node, token):
    wait_ready(node)

    def steady(rt):
        for e in rt["node_states"]:
            e.pop("last_contact", None)    # "now" for the node itself: never the same twice
        return rt

    def same():
        rc, out, err = cli.at(node, "--json", "cluster", "status")
        assert rc == 0, err
        return steady(json.loads(out)) == steady(node.runtime())
    # applied_index may move between the two reads; they agree once it is still
    wait_until(same, 10, "`vigil --json cluster status` to equal GET /api/cluster/runtime")


def test_known_hosts(cli, node, token, tmp_path):
    rc, out, err = cli.at(node, "cluster", "known-hosts")
    assert rc == 0, err
    cluster = node.api.get("/api/cluster")[1]
    lines = [l for l in out.splitlines() if l and not l.startswith("#")]
    assert len(lines) == len(cluster["nodes"]) == 1, out
    m = KNOWN_HOSTS_LINE.match(lines[0])
    assert m, lines[0]
    assert int(m.group(1)) == int(node.se_listen.rsplit(":", 1)[1])
    assert f"ssh-ed25519 {m.group(2)}" == cluster["nodes"][0]["se_host_key"]

    # OpenSSH itself finds the host in the file
    path = tmp_path / "known_hosts"
    path.write_text(out)
    host = f"[127.0.0.1]:{m.group(1)}"
    rc, found, err = cli.registry.run_once(["ssh-keygen", "-F", host, "-f", path])
    assert rc == 0 and m.group(2) in found, (rc, found, err)

    rc, out, err = cli.at(node, "--json", "cluster", "known-hosts")
    assert rc == 0 and json.loads(out) == cluster


def test_create_list_show_delete_round_trip(cli, node, token, tmp_path):
    key = harness.make_ed25519_key(tmp_path / "keys", "se-cli")[1]
    created = {}

    def create(obj_type, body):
        path = tmp_path / f"{obj_type}.json"
        path.write_text(json.dumps(body))
        rc, out, err = cli.at(node, obj_type, "create", "--file", path)
        assert rc == 0, (obj_type, err)
        m = re.fullmatch(rf"created {obj_type} {body['name']} \(uuid ([0-9a-f-]{{36}})\)\n", out)
        assert m, out
        status, doc = node.api.get(f"/api/{obj_type}/{m.group(1)}")
        assert status == 200 and doc["name"] == body["name"], doc
        created[obj_type] = doc
        return doc["uuid"]

    hm = create("healthmonitor", healthmonitor_body("cli-hm", http=True))
    pool = create("pool", pool_body("cli-pool", [hm]))
    se = create("serviceengine", serviceengine_body("cli-se", key))
    create("virtualservice", virtualservice_body("cli-vs", pool, se_refs=[se]))

    # create from stdin (`--file -`) works too, and --json prints the stored object
    rc, out, err = cli.registry.run_once(
        ["sh", "-c", f"echo '{json.dumps(healthmonitor_body('cli-hm2'))}' | "
                     f"'{VIGIL}' {' '.join(map(str, controller_flags(node)))} --json "
                     f"healthmonitor create --file -"])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["name"] == "cli-hm2" and node.api.get(f"/api/healthmonitor/{doc['uuid']}")[0] == 200

    list_headers = {
        "healthmonitor": ["NAME", "UUID", "TYPE", "INTERVAL", "TIMEOUT", "UP/DOWN_CHECKS"],
        "pool": ["NAME", "UUID", "LB_ALGORITHM", "SERVERS", "HEALTH_MONITORS"],
        "virtualservice": ["NAME", "UUID", "ENABLED", "VIP", "PORTS", "APPLICATION",
                           "POOL_REF"],
        "serviceengine": SE_HEADERS,
    }
    for obj_type, doc in created.items():
        rc, out, err = cli.at(node, obj_type, "list")
        assert rc == 0, err
        rows = table_rows(out, list_headers[obj_type])
        mine = [r for r in rows if r[0] == doc["name"]]
        assert len(mine) == 1 and mine[0][1] == doc["uuid"], rows
        assert len(rows) == len(node.api.list_all(obj_type))
        # --json list equals the API's list
        rc, out, err = cli.at(node, "--json", obj_type, "list")
        assert rc == 0, err
        status, api_doc = node.api.get(f"/api/{obj_type}", params={"page_size": 1000})
        assert json.loads(out) == api_doc
        # show, with and without --json, equals the API's object
        for flags in ([], ["--json"]):
            rc, out, err = cli.at(node, *flags, obj_type, "show", doc["name"])
            assert rc == 0, err
            assert json.loads(out) == node.api.get(f"/api/{obj_type}/{doc['uuid']}")[1]
        # show by uuid also works
        rc, out, err = cli.at(node, obj_type, "show", doc["uuid"])
        assert rc == 0 and json.loads(out)["name"] == doc["name"], err

    # a registered SE that never connected: OPER_DOWN, and "-" for what it never reported
    row = table_rows(cli.at(node, "serviceengine", "list")[1], SE_HEADERS)[0]
    assert row[0] == "cli-se" and row[3] == "OPER_DOWN", row
    assert row[2] == row[4] == row[5] == row[6] == "-", row

    row = table_rows(cli.at(node, "virtualservice", "list")[1],
                     list_headers["virtualservice"])[0]
    assert row[2:] == ["true", "127.0.0.1", "10080", "http", pool], row

    # deleting something still referenced: the API's 409 text, exit 1
    rc, out, err = cli.at(node, "pool", "delete", "cli-pool")
    assert rc == 1, out
    assert "HTTP 409" in err and "still referenced" in err, err

    for obj_type in ("virtualservice", "pool", "serviceengine", "healthmonitor"):
        doc = created[obj_type]
        rc, out, err = cli.at(node, obj_type, "delete", doc["name"])
        assert rc == 0, (obj_type, err)
        assert out == f"deleted {obj_type} {doc['name']} (uuid {doc['uuid']})\n"
        assert node.api.get(f"/api/{obj_type}/{doc['uuid']}")[0] == 404
        rc, out, err = cli.at(node, obj_type, "show", doc["name"])
        assert rc == 1 and err.strip() == f"vigil: no {obj_type} named {doc['name']}", err
        rc, out, err = cli.at(node, obj_type, "delete", doc["name"])
        assert rc == 1 and "no " in err, err


def test_show_and_delete_page_through_the_list(cli, node, token):
    # 1001 objects: the one we look for is on the second page of 1000
    names = [f"page-hm-{i:04d}" for i in range(1001)]
    acked, failed = harness.write_many(node.api, names, workers=8)
    assert not failed, list(failed.items())[:3]
    last = sorted(node.api.list_all("healthmonitor"), key=lambda o: o["name"])
    rc, out, err = cli.at(node, "healthmonitor", "list")
    assert rc == 0, err
    rows = table_rows(out, ["NAME", "UUID", "TYPE", "INTERVAL", "TIMEOUT", "UP/DOWN_CHECKS"])
    assert sorted(r[0] for r in rows) == [o["name"] for o in last]
    rc, out, err = cli.at(node, "--json", "healthmonitor", "list")
    assert rc == 0 and json.loads(out)["count"] == 1001 == len(json.loads(out)["results"])
    second_page = node.api.get("/api/healthmonitor", params={"page": 2, "page_size": 1000})[1]
    target = second_page["results"][0]
    rc, out, err = cli.at(node, "healthmonitor", "show", target["name"])
    assert rc == 0 and json.loads(out)["uuid"] == target["uuid"], err
    rc, out, err = cli.at(node, "healthmonitor", "delete", target["name"])
    assert rc == 0, err
    assert node.api.get(f"/api/healthmonitor/{target['uuid']}")[0] == 404


def test_api_4xx_exits_1_with_the_api_error_text(cli, node, token, tmp_path):
    bad = healthmonitor_body("cli-bad", send_interval=-3)
    status, doc = node.api.post("/api/healthmonitor", bad)
    assert status == 400, doc
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    rc, out, err = cli.at(node, "healthmonitor", "create", "--file", path)
    assert rc == 1 and out == ""
    assert err.strip() == f"vigil: POST /api/healthmonitor: HTTP 400: {doc['error']}", err

    good = tmp_path / "good.json"
    good.write_text(json.dumps(healthmonitor_body("cli-dup")))
    assert cli.at(node, "healthmonitor", "create", "--file", good)[0] == 0
    rc, out, err = cli.at(node, "healthmonitor", "create", "--file", good)
    assert rc == 1
    assert "HTTP 409" in err and "cli-dup" in err, err

    # a file that is not JSON, or not there: exit 1, the file named, nothing sent
    before = len(node.api.list_all("healthmonitor"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",')
    rc, out, err = cli.at(node, "healthmonitor", "create", "--file", broken)
    assert rc == 1 and str(broken) in err and "invalid JSON" in err, err
    rc, out, err = cli.at(node, "pool", "create", "--file", tmp_path / "nope.json")
    assert rc == 1 and "No such file" in err, err
    rc, out, err = cli.at(node, "pool", "create", "--file", tmp_path)
    assert rc == 1, err
    arr = tmp_path / "array.json"
    arr.write_text("[1, 2]")
    rc, out, err = cli.at(node, "pool", "create", "--file", arr)
    assert rc == 1 and "JSON object" in err, err
    assert len(node.api.list_all("healthmonitor")) == before


def test_events_against_the_controller(cli, node, token):
    """`events` against vigild: its 404 while /api/event is missing, its list once there."""
    status, _ = node.api.get("/api/event")
    if status == 404:
        rc, out, err = cli.at(node, "events")
        assert rc == 1 and "HTTP 404" in err, err
        return
    assert status == 200
    wait_ready(node)

    def same():
        rc, out, err = cli.at(node, "--json", "events")
        assert rc == 0, err
        api_status, api_doc = node.api.get("/api/event", params={"page_size": 1000})
        return json.loads(out) == api_doc and api_doc
    doc = wait_until(same, 10, "`vigil --json events` to equal GET /api/event")
    rc, out, err = cli.at(node, "events")
    assert rc == 0, err
    rows = table_rows(out, EVENT_HEADERS)
    assert len(rows) >= len(doc["results"])
    assert [r[1] for r in rows[:len(doc["results"])]] == [e["event_id"] for e in doc["results"]]
    rc, out, err = cli.at(node, "events", "--type", "CLUSTER_STATUS_CHANGED")
    assert rc == 0, err
    assert {r[1] for r in table_rows(out, EVENT_HEADERS)} <= {"CLUSTER_STATUS_CHANGED"}


# ---------------------------------------------------------------------------
# authentication against a real controller (issue 5)

def test_unauthenticated_calls_exit_1_with_a_login_hint(cli, node):
    for args in (["pool", "list"], ["cluster", "status"], ["events"]):
        rc, out, err = cli.at(node, *args)
        assert rc == 1 and out == "", (args, rc, out, err)
        lines = err.strip().splitlines()
        assert "HTTP 401" in lines[0], err
        assert "vigil login" in lines[-1] and "hint" in lines[-1], err
    rc, out, err = cli.at(node, "--token", "not-a-real-token", "pool", "list")
    assert rc == 1 and "HTTP 401" in err and "--token" in err.splitlines()[-1], err


def test_login_with_the_password_on_stdin_keeps_a_private_token(cli, node):
    url = node.api.base
    # a wrong password: exit 1, said plainly, nothing kept
    rc, out, err = cli.at(node, "login", input="not-the-password\n")
    assert rc == 1 and "bad username or password" in err, (rc, out, err)
    assert not cli.token_file.exists()
    # the right one (a line from stdin, which is not a terminal)
    rc, out, err = cli.at(node, "login", "--username", harness.ADMIN_USER,
                          input=harness.ADMIN_PASSWORD + "\n")
    assert rc == 0, err
    assert f"Logged in to {url} as admin (admin)" in out, out
    assert str(cli.token_file) in out
    assert harness.ADMIN_PASSWORD not in out + err
    mode = stat.S_IMODE(cli.token_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(cli.token_file.parent.stat().st_mode) == 0o700
    lines = cli.token_file.read_text().splitlines()
    kept, facts = lines[0], dict(l.split("=", 1) for l in lines[1:])
    assert facts["username"] == "admin" and facts["controller"] == url, facts
    assert kept not in out + err  # the token itself is never printed
    # it is a real token of the controller, under the id kept next to it
    status, doc = bearer_status(node, kept)
    assert status == 200 and doc["via"] == "token" and doc["username"] == "admin", doc
    ids = [t["id"] for t in node.api.get("/api/token")[1]["results"]]
    assert facts["id"] in ids

    # later commands use it without --token or $VIGIL_TOKEN
    rc, out, err = cli.at(node, "pool", "list")
    assert rc == 0, err
    # --token and $VIGIL_TOKEN still win over it (a bad one is refused, naming its source)
    rc, out, err = cli.at(node, "--token", "bogus", "pool", "list")
    assert rc == 1 and "HTTP 401" in err and "--token" in err, err

    # logout revokes it on the controller (the one it was issued by, kept in the file; the
    # CA to trust is given as for every command) and removes the file
    ca_flags = controller_flags(node)[2:]
    rc, out, err = cli(*ca_flags, "logout")
    assert rc == 0, err
    assert facts["id"] in out and not cli.token_file.exists(), out
    assert bearer_status(node, kept)[0] == 401
    rc, out, err = cli.at(node, "pool", "list")
    assert rc == 1 and "HTTP 401" in err and "vigil login" in err, err
    rc, out, err = cli(*ca_flags, "logout")
    assert rc == 0 and "Not logged in" in out, (out, err)

    # a kept token revoked behind the CLI's back: refused, with a hint naming the file
    assert cli.at(node, "login", input=harness.ADMIN_PASSWORD + "\n")[0] == 0
    kept_id = dict(l.split("=", 1) for l in cli.token_file.read_text().splitlines()[1:])["id"]
    assert node.api.delete(f"/api/token/{kept_id}")[0] == 204
    rc, out, err = cli.at(node, "pool", "list")
    assert rc == 1 and str(cli.token_file) in err and "vigil login" in err, err
    rc, out, err = cli.at(node, "logout")
    assert rc == 0 and not cli.token_file.exists(), (out, err)


def test_login_respects_xdg_config_home_and_refuses_a_readable_token_file(cli, node, tmp_path,
                                                                          monkeypatch):
    config = tmp_path / "xdg" / "conf"   # missing: made, private
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    rc, out, err = cli.at(node, "login", input=harness.ADMIN_PASSWORD)  # no newline
    assert rc == 0, err
    path = config / "vigil" / "token"
    assert path.exists() and not cli.token_file.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert cli.at(node, "pool", "list")[0] == 0
    path.chmod(0o644)
    rc, out, err = cli.at(node, "pool", "list")
    assert rc == 1 and str(path) in err and "0644" in err, err
    path.chmod(0o600)
    # no password at all: exit 1, nothing sent
    rc, out, err = cli.at(node, "login", input="")
    assert rc == 1 and "no password" in err, err


# ---------------------------------------------------------------------------
# against the stub: the CLI's rendering and transport (not the controller)

def test_events_pages_through_everything_in_order(cli, stub):
    events = [make_event(i) for i in range(2500)]
    stub.routes["/api/event"] = paged(events)
    rc, out, err = cli.at(stub.address, "events")
    assert rc == 0, err
    rows = table_rows(out, EVENT_HEADERS)
    assert len(rows) == 2500
    assert rows[0] == [events[0]["report_timestamp"], "CONTROLLER_NODE_LEFT", "CLUSTERMGR",
                       "cluster node-0", "event number 0"]
    assert [r[4] for r in rows] == [e["event_description"] for e in events]
    seen = [(q.get("page"), q.get("page_size")) for _, _, q, _ in stub.requests_to("/api/event")]
    assert seen == [("1", "1000"), ("2", "1000"), ("3", "1000")]

    rc, out, err = cli.at(stub.address, "--json", "events")
    assert rc == 0, err
    assert json.loads(out) == {"count": 2500, "results": events}


def test_events_type_filter_is_sent_to_the_api(cli, stub):
    events = [make_event(i, "CONTROLLER_NODE_JOINED" if i % 2 else "CONTROLLER_NODE_LEFT")
              for i in range(10)]

    def handler(query, headers):
        wanted = [e for e in events if e["event_id"] == query.get("event_id", e["event_id"])]
        return paged(wanted)(query, headers)
    stub.routes["/api/event"] = handler
    rc, out, err = cli.at(stub.address, "events", "--type", "CONTROLLER_NODE_JOINED",
                          "--since", "2026-11-28T06:00:00.000Z")
    assert rc == 0, err
    rows = table_rows(out, EVENT_HEADERS)
    assert [r[1] for r in rows] == ["CONTROLLER_NODE_JOINED"] * 5
    (_, _, query, _), = stub.requests_to("/api/event")
    assert query["event_id"] == "CONTROLLER_NODE_JOINED"
    assert query["since"] == "2026-11-28T06:00:00.000Z"

    rc, out, err = cli.at(stub.address, "events", "--type", "NO_SUCH_EVENT")
    assert rc == 0, err
    assert out.splitlines()[1:] == ["(no events of type NO_SUCH_EVENT)"], out


def test_events_hostile_text_cannot_reach_the_terminal(cli, stub):
    stub.routes["/api/event"] = paged([make_event(
        1, event_description="line\nforged\x1b[31mred\x07", obj_name="n\x9bx",
        module="CLUSTER\rMGR")])
    rc, out, err = cli.at(stub.address, "events")
    assert rc == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out and "\x9b" not in out
    rows = table_rows(out, EVENT_HEADERS)
    assert len(rows) == 1 and rows[0][4] == "line?forged?[31mred?", rows


def test_token_is_sent_as_bearer(cli, stub, monkeypatch):
    """--token, then $VIGIL_TOKEN, then the token `vigil login` kept."""
    stub.routes["/api/pool"] = paged([])
    stub.routes["/api/token"] = lambda q, h: (201, {
        "id": "tid-1", "token": "tok-stored", "username": "ops",
        "expires": "2026-12-28T06:00:00.000Z", "description": ""})
    stub.routes["/api/session"] = lambda q, h: (200, {"username": "ops", "role": "operator"})
    assert cli.at(stub.address, "pool", "list")[0] == 0
    assert cli.at(stub.address, "--token", "tok-flag", "pool", "list")[0] == 0
    rc, out, err = cli.at(stub.address, "login", "--username", "ops", input="s3cret pass\n")
    assert rc == 0 and "as ops (operator)" in out, (out, err)
    (method, _, _, headers), = stub.requests_to("/api/token")
    assert method == "POST"
    assert headers.get("Authorization") == "Basic " + base64.b64encode(b"ops:s3cret pass").decode()
    assert cli.at(stub.address, "pool", "list")[0] == 0
    monkeypatch.setenv("VIGIL_TOKEN", "tok-env")
    assert cli.at(stub.address, "pool", "list")[0] == 0
    assert cli.at(stub.address, "pool", "list", "--token=tok-wins")[0] == 0
    auth = [h.get("Authorization") for _, _, _, h in stub.requests_to("/api/pool")]
    assert auth == [None, "Bearer tok-flag", "Bearer tok-stored", "Bearer tok-env",
                    "Bearer tok-wins"]
    # logout revokes the kept token by its id, with that token
    stub.routes["/api/token/tid-1"] = lambda q, h: (204, None)
    rc, out, err = cli.at(stub.address, "logout")
    assert rc == 0, err
    (method, _, _, headers), = stub.requests_to("/api/token/tid-1")
    assert method == "DELETE" and headers.get("Authorization") == "Bearer tok-stored"
    assert not cli.token_file.exists()


def test_login_on_a_terminal_prompts_without_echo(cli, stub):
    import pty
    import select
    stub.routes["/api/token"] = lambda q, h: (201, {"id": "tid-t", "token": "tok-t",
                                                    "username": "admin", "expires": ""})
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([str(VIGIL), "--controller", f"http://{stub.address}", "login"],
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        cli.registry.procs.append(("vigil", proc))
        os.close(slave)
        slave = None
        prompt = b""
        deadline = time.monotonic() + 10
        while b": " not in prompt and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 0.2)[0]:
                prompt += os.read(proc.stderr.fileno(), 1024)
        assert prompt.startswith(b"Password for admin at http://"), prompt
        os.write(master, b"typed-secret\n")
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        echoed = b""
        while select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            echoed += chunk
        assert b"typed-secret" not in echoed + out + err, echoed
        (_, _, _, headers), = stub.requests_to("/api/token")
        assert headers["Authorization"] == "Basic " + base64.b64encode(
            b"admin:typed-secret").decode()
        assert cli.token_file.read_text().startswith("tok-t\n")
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def test_logout_keeps_the_token_when_the_controller_cannot_revoke_it(cli, stub):
    stub.routes["/api/token"] = lambda q, h: (201, {"id": "tid-2", "token": "tok-2",
                                                    "username": "admin", "expires": ""})
    assert cli.at(stub.address, "login", input="pw\n")[0] == 0
    stub.routes["/api/token/tid-2"] = lambda q, h: (503, {"error": "no leader with quorum",
                                                          "outcome": "not_applied"})
    rc, out, err = cli.at(stub.address, "logout")
    assert rc == 1 and "HTTP 503" in err and "kept" in err, err
    assert cli.token_file.exists()
    stub.routes["/api/token/tid-2"] = lambda q, h: (404, {"error": "no such token"})
    rc, out, err = cli.at(stub.address, "logout")
    assert rc == 0 and not cli.token_file.exists(), err
    stub.routes["/api/token"] = lambda q, h: (429, {"error": "too many failed logins"})
    rc, out, err = cli.at(stub.address, "login", input="pw\n")
    assert rc == 1 and "HTTP 429" in err and "too many failed logins" in err, err
    assert not cli.token_file.exists()


def test_redirects_are_not_followed(cli, stub):
    stub.routes["/api/cluster/runtime"] = lambda q, h: (
        302, None, {"Location": f"http://{stub.address}/elsewhere"})
    stub.routes["/elsewhere"] = lambda q, h: (200, {"node_id": 1})
    rc, out, err = cli.at(stub.address, "cluster", "status")
    assert rc == 1, out
    assert "redirected" in err and f"http://{stub.address}/elsewhere" in err, err
    assert stub.requests_to("/elsewhere") == []


def test_server_errors_carry_text_and_outcome(cli, stub, tmp_path):
    stub.routes["/api/pool"] = lambda q, h: (
        503, {"error": "no leader with quorum", "outcome": "not_applied"})
    body = tmp_path / "pool.json"
    body.write_text(json.dumps(pool_body("p")))
    rc, out, err = cli.at(stub.address, "pool", "create", "--file", body)
    assert rc == 1
    assert err.strip() == ("vigil: POST /api/pool: HTTP 503: no leader with quorum "
                           "(outcome: not_applied)"), err

    stub.routes["/api/pool"] = lambda q, h: (502, "<html>Bad Gateway</html>")
    rc, out, err = cli.at(stub.address, "pool", "list")
    assert rc == 1 and "HTTP 502" in err and "Bad Gateway" in err, err

    stub.routes["/api/pool"] = lambda q, h: (200, "not json")
    rc, out, err = cli.at(stub.address, "pool", "list")
    assert rc == 1 and "not JSON" in err, err


def test_every_request_has_a_deadline(cli, stub):
    release = threading.Event()

    def slow(query, headers):
        release.wait(10)
        return 200, {"count": 0, "results": []}
    stub.routes["/api/pool"] = slow
    try:
        start = time.monotonic()
        rc, out, err = cli.at(stub.address, "--timeout", "1", "pool", "list", timeout=15)
        elapsed = time.monotonic() - start
    finally:
        release.set()
    assert rc == 1, out
    assert "within 1 s" in err, err
    assert elapsed < 5, elapsed


def test_cluster_status_renders_a_three_node_view(cli, stub):
    nodes = [{"id": i, "name": f"ctl-{i}", "raft_address": f"127.0.0.{i}:7000",
              "api_address": f"127.0.0.{i}:8080", "se_address": f"127.0.0.{i}:5098",
              "se_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43}
             for i in (1, 2, 3)]
    history = [{"status": s, "time": f"2026-11-28T06:00:{i:02d}.000Z", "reason": f"r{i}"}
               for i, s in enumerate(["Not Responsive", "Restoring",
                                      "Waiting for Service Engines",
                                      "Cluster copying DB from leader", "Ready"] * 4)]
    runtime = {"node_id": 2, "leader_id": 3, "term": 7,
               "cluster_state": {"status": "Ready", "state": "CLUSTER_UP_HA_COMPROMISED",
                                 "since": "2026-11-28T06:00:19.000Z", "reason": "node 1 down"},
               "node_states": [
                   {"id": 3, "name": "ctl-3", "role": "CLUSTER_LEADER",
                    "state": "CLUSTER_ACTIVE", "applied_index": 1234},
                   {"id": 2, "name": "ctl-2", "role": "CLUSTER_FOLLOWER",
                    "state": "CLUSTER_ACTIVE", "applied_index": 1230},
                   {"id": 1, "name": "ctl-1", "role": "CLUSTER_FOLLOWER",
                    "state": "CLUSTER_INACTIVE", "applied_index": None}],
               "status_history": history}
    stub.routes["/api/cluster"] = lambda q, h: (200, {"name": "prod", "uuid": "u-1",
                                                      "virtual_ip": None, "nodes": nodes})
    stub.routes["/api/cluster/runtime"] = lambda q, h: (200, runtime)
    rc, out, err = cli.at(stub.address, "cluster", "status")
    assert rc == 0, err
    assert field(out, "Leader") == "ctl-3 (id 3)"
    assert field(out, "Answered") == "ctl-2 (id 2)"
    assert field(out, "Term") == "7"
    assert field(out, "State") == "CLUSTER_UP_HA_COMPROMISED"
    assert field(out, "Reason") == "node 1 down"
    assert table_rows(out, NODE_HEADERS) == [
        ["1", "ctl-1", "CLUSTER_FOLLOWER", "CLUSTER_INACTIVE", "-", "127.0.0.1:8080"],
        ["2", "ctl-2", "CLUSTER_FOLLOWER", "CLUSTER_ACTIVE", "1230", "127.0.0.2:8080"],
        ["3", "ctl-3", "CLUSTER_LEADER", "CLUSTER_ACTIVE", "1234", "127.0.0.3:8080"]]
    shown = table_rows(out, HISTORY_HEADERS)
    assert shown == [[h["time"], h["status"], h["reason"]] for h in history[-10:]]
    assert "last 10 of 20" in out

    # without /api/cluster (e.g. an error there) the runtime view is still shown
    del stub.routes["/api/cluster"]
    rc, out, err = cli.at(stub.address, "cluster", "status")
    assert rc == 0 and "warning" in err, err
    assert [r[1] for r in table_rows(out, NODE_HEADERS)] == ["ctl-3", "ctl-2", "ctl-1"]


def test_known_hosts_rendering(cli, stub):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB" + "x" * 42
    nodes = [
        {"id": 1, "name": "a", "se_address": "127.0.0.1:5098", "se_host_key": key},
        {"id": 2, "name": "b", "se_address": "10.0.0.2:22", "se_host_key": key + " comment"},
        {"id": 3, "name": "c", "se_address": "[::1]:5099", "se_host_key": key},
        {"id": 4, "name": "d", "se_address": "127.0.0.4:5098", "se_host_key": None},
        {"id": 5, "name": "e", "se_address": "127.0.0.5:5098",
         "se_host_key": key + "\n[evil]:1 ssh-ed25519 AAAA"},
        {"id": 6, "name": "f", "se_address": "*:5098", "se_host_key": key},
    ]
    stub.routes["/api/cluster"] = lambda q, h: (200, {"name": "c", "uuid": "u", "nodes": nodes})
    rc, out, err = cli.at(stub.address, "cluster", "known-hosts")
    assert rc == 0, err
    lines = [l for l in out.splitlines() if not l.startswith("#")]
    assert lines == [f"[127.0.0.1]:5098 {key}", f"10.0.0.2 {key}", f"[::1]:5099 {key}"]
    assert err.count("warning") == 3 and "d (id 4)" in err and "e (id 5)" in err, err

    stub.routes["/api/cluster"] = lambda q, h: (200, {"name": "c", "uuid": "u",
                                                      "nodes": nodes[3:4]})
    rc, out, err = cli.at(stub.address, "cluster", "known-hosts")
    assert rc == 1 and "no node has a usable" in err, err


def test_https_controller_with_cacert_or_insecure(cli, tmp_path):
    """The flags the auth/TLS issue needs already work against an https stub."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    rc, out, err = cli.registry.run_once(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=vigil-test",
         "-addext", "subjectAltName=IP:127.0.0.1"])
    assert rc == 0, err
    stub = StubApi(tls_cert=cert, tls_key=key)
    try:
        stub.routes["/api/pool"] = paged([{"name": "p", "uuid": "u-p"}])
        url = f"https://{stub.address}"
        rc, out, err = cli("--controller", url, "pool", "list")
        assert rc == 1 and "TLS" in err and "--cacert" in err, err
        rc, out, err = cli("--controller", url, "--cacert", cert, "pool", "list")
        assert rc == 0, err
        assert table_rows(out, ["NAME", "UUID", "LB_ALGORITHM", "SERVERS",
                                "HEALTH_MONITORS"])[0][:2] == ["p", "u-p"]
        rc, out, err = cli("--controller", url, "--insecure", "--token", "t", "pool", "list")
        assert rc == 0, err
        assert stub.requests_to("/api/pool")[-1][3].get("Authorization") == "Bearer t"
    finally:
        stub.close()


# ---------------------------------------------------------------------------
# against a vigild serving HTTPS with the cluster's self-signed certificate

def test_cli_against_a_tls_controller(cli, cluster_factory, tmp_path):
    node = cluster_factory(1).nodes[0]
    pem = node.cluster_tls_cert()
    assert pem and "BEGIN CERTIFICATE" in pem
    ca = tmp_path / "cluster-ca.pem"
    ca.write_text(pem)
    url = f"https://{node.api_address}"
    doc = make_token(node)
    rc, out, err = cli("--controller", url, "--token", doc["token"], "pool", "list")
    assert rc == 1 and "TLS" in err and "--cacert" in err, err
    rc, out, err = cli("--controller", url, "--cacert", ca, "--token", doc["token"],
                       "cluster", "status")
    assert rc == 0, err
    assert field(out, "Leader") == "node-1 (id 1)"
    rc, out, err = cli("--controller", url, "--insecure", "--token", doc["token"], "pool", "list")
    assert rc == 0, err
    # login over TLS, then commands with the kept token
    rc, out, err = cli("--controller", url, "--cacert", ca, "login",
                       input=harness.ADMIN_PASSWORD + "\n")
    assert rc == 0, err
    assert stat.S_IMODE(cli.token_file.stat().st_mode) == 0o600
    rc, out, err = cli("--controller", url, "--cacert", ca, "--json", "pool", "list")
    assert rc == 0 and json.loads(out) == {"count": 0, "results": []}, err
    rc, out, err = cli("--cacert", ca, "logout")
    assert rc == 0, err
    assert not cli.token_file.exists()
    # the plain-http URL does not get an answer from an HTTPS port
    rc, out, err = cli("--controller", f"http://{node.api_address}", "--token", doc["token"],
                       "pool", "list", timeout=30)
    assert rc == 1, (out, err)


def test_serviceengine_list_shows_the_runtime_fields(cli, stub):
    """State, controller node, heartbeat age and config version from GET /api/serviceengine;
    any field missing or null shows as "-" (the stub stands for runtime fields a controller
    may not serve yet), hostile text is neutralised, and --json is the API's objects."""
    beat = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 3))
    old = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 3 * 3600 - 300))
    ses = [
        {"uuid": "u-1", "name": "se-up", "public_key": "ssh-ed25519 AAAA",
         "oper_status": {"state": "OPER_UP"}, "controller_node": 2,
         "connected_since": beat, "last_heartbeat": beat, "se_state": "CONNECTED",
         "config_version": 17},
        {"uuid": "u-2", "name": "se-bare", "public_key": "ssh-ed25519 AAAA"},
        {"uuid": "u-3", "name": "se-null", "oper_status": None, "controller_node": None,
         "last_heartbeat": None, "se_state": None, "config_version": None},
        {"uuid": "u-4", "name": "se-old", "oper_status": {"state": "OPER_DOWN"},
         "controller_node": 3, "last_heartbeat": old, "se_state": "HEADLESS"},
        {"uuid": "u-5", "name": "se-odd", "oper_status": "weird", "last_heartbeat": "yesterday",
         "se_state": "EVIL\x1b[2J"},
    ]
    stub.routes["/api/serviceengine"] = paged(ses)
    rc, out, err = cli.at(stub.address, "serviceengine", "list")
    assert rc == 0, err
    assert "\x1b" not in out, out
    rows = {r[0]: r for r in table_rows(out, SE_HEADERS)}
    assert list(rows) == ["se-up", "se-bare", "se-null", "se-old", "se-odd"], out
    up = rows["se-up"]
    assert up[1:5] == ["u-1", "CONNECTED", "OPER_UP", "2"] and up[6] == "17", up
    m = re.fullmatch(r"(\d+)\.\ds", up[5])
    assert m and 2 <= int(m.group(1)) <= 30, up
    assert rows["se-bare"][2:] == ["-"] * 5, rows["se-bare"]
    assert rows["se-null"][2:] == ["-"] * 5, rows["se-null"]
    assert rows["se-old"][2:] == ["HEADLESS", "OPER_DOWN", "3", "3h05m", "-"], rows["se-old"]
    odd = rows["se-odd"]
    assert odd[2] == "EVIL?[2J" and odd[3] == "-" and odd[5] == "yesterday", odd

    rc, out, err = cli.at(stub.address, "--json", "serviceengine", "list")
    assert rc == 0, err
    assert json.loads(out) == {"count": len(ses), "results": ses}
