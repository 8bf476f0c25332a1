"""System-test harness: the one place that starts and stops Vigil processes.

Everything a system test runs (vigild nodes, one-shot vigild invocations, later
SEs and backends) is started through a `ProcessRegistry`, and the `cluster_factory`
fixture in conftest.py stops every registered process by PID when the test ends,
also when it fails. Authentication and TLS will change `Api` and `Node.args()`
only.

Conventions:
- every address is on 127.0.0.1, ports come from `allocate_port()`;
- every wait is bounded: `wait_until(cond, timeout, what)` raises with `what`;
- node logs go to files in the test's tmp dir (`<name>.stdout` / `<name>.stderr`).
"""

import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
# The tests run a vigild built with its test-only knobs (--test-* flags: meson
# -Dtest_knobs=true, the build-test/ dir `make test` makes); VIGILD points at another such
# build (build-asan/). VIGILD_DEFAULT is the default build users run and install, which
# must refuse the knobs (test_flags.py).
TEST_BUILD_HINT = ("`meson setup build-test -Dtest_knobs=true && ninja -C build-test` "
                   "(or `make test-build`), or set VIGILD")
VIGILD = Path(os.environ.get("VIGILD", REPO_ROOT / "build-test" / "src" / "controller" / "vigild"))
VIGILD_DEFAULT = Path(os.environ.get("VIGILD_DEFAULT",
                                     REPO_ROOT / "build" / "src" / "controller" / "vigild"))

HOST = "127.0.0.1"
ROLE_LEADER = "CLUSTER_LEADER"
ROLE_FOLLOWER = "CLUSTER_FOLLOWER"
STATUS_WORDS = ("Ready", "Not Responsive", "Errors", "Restoring",
                "Waiting for Service Engines", "Cluster copying DB from leader")

# Authentication is always on (no flag turns it off): every node of a test cluster gets the
# same first-admin password through --admin-password-file, and Api authenticates as that
# admin with HTTP Basic unless told otherwise. Nodes run as users run them, over HTTPS with
# the cluster's self-signed certificate, which Api verifies (Node.ca_file); a test about
# plain HTTP asks for tls=False (--no-tls). --test-fast-password-hash puts Argon2id at its
# minimum limits (a test build's knob: the default build refuses it).
ADMIN_USER = "admin"
ADMIN_PASSWORD = "vigil-test-admin-password"
TEST_AUTH_FLAGS = ("--test-fast-password-hash",)

# Short timeouts: a hung node must fail a test quickly, not stall it.
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 10.0


class HarnessError(AssertionError):
    """A wait ran out or a process misbehaved; the message says what."""


class NotReady(Exception):
    """A node answered 'not yet' (503): waits retry on it."""


# ---------------------------------------------------------------------------
# waiting

def wait_until(cond, timeout, what, interval=0.05):
    """Poll cond() until it returns a truthy value; return that value.

    Raise HarnessError naming `what` (and the last exception cond raised, if any)
    when `timeout` seconds pass first. A HarnessError raised by cond (e.g. "the process
    exited") ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = cond()
            if value:
                return value
            last_exc = None
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported in the message
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise HarnessError(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# ports

_allocated = set()
_alloc_lock = threading.Lock()


def port_is_free(port, host=HOST, reuse=False):
    """True when we could bind host:port. With reuse=True (as servers bind, SO_REUSEADDR),
    connections in TIME_WAIT on the port do not count, only a listener does."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def allocate_port():
    """A free TCP port on 127.0.0.1, never handed out twice in this session.

    Ports are drawn below the Linux ephemeral range (32768+) so that outgoing
    connections cannot take them between allocation and use.
    """
    with _alloc_lock:
        for _ in range(2000):
            port = random.randint(20000, 32000)
            if port in _allocated:
                continue
            if port_is_free(port):
                _allocated.add(port)
                return port
    raise HarnessError("no free port found in 20000-32000")


def addr(port):
    return f"{HOST}:{port}"


# ---------------------------------------------------------------------------
# processes

def terminate(proc, timeout=20.0):
    """Stops the subprocess.Popen PROC by its PID: SIGTERM, then SIGKILL after TIMEOUT
    seconds. For a test's own processes started outside the registry."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


class ProcessRegistry:
    """Every process started for a test, so teardown can stop each by PID."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs = []   # (label, Popen)
        self.logs = {}    # label -> stderr path (latest first-start order kept)
        self.watchdog = Watchdog()
        self.crashes = []          # take_crashes lines found by stop_all
        self.crashes_named = set()  # pids already named

    def admin_password_file(self):
        """A file holding ADMIN_PASSWORD (mode 0600), shared by the test's nodes."""
        path = self.log_dir / "admin-password"
        if not path.exists():
            path.write_text(ADMIN_PASSWORD + "\n")
            path.chmod(0o600)
        return path

    def spawn(self, label, argv, stdout_path=None, stderr_path=None, env=None):
        """Start argv with output appended to log files; register it. Returns Popen."""
        stdout_path = stdout_path or self.log_dir / f"{label}.stdout"
        stderr_path = stderr_path or self.log_dir / f"{label}.stderr"
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, env=env,
                                    start_new_session=True)
        self.procs.append((label, proc))
        self.logs[label] = stderr_path
        return proc

    def run_once(self, argv, timeout=15.0):
        """Run argv to completion (for invocations expected to exit).

        Returns (returncode, stdout, stderr) as text; kills the process by PID and
        raises when it is still running after `timeout` seconds.
        """
        proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        self.procs.append(("run_once", proc))
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise HarnessError(
                f"{' '.join(map(str, argv))} still running after {timeout}s "
                f"(expected it to exit); stderr: {err.decode(errors='replace')[-2000:]}")
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def stop_all(self, deadline=5.0):
        """SIGTERM every live registered process, SIGKILL those still alive after deadline."""
        self.watchdog.stop()
        live = [(label, p) for label, p in self.procs if p.poll() is None]
        for _, p in live:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + deadline
        for _, p in live:
            try:
                p.wait(timeout=max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        self.crashes.extend(self.take_crashes())

    def take_crashes(self):
        """One line for each registered process that a crash signal (SIGSEGV, SIGABRT, ...)
        ended and that was not named before; the line goes into its stderr log too."""
        found = []
        for label, p in self.procs:
            rc = p.poll()
            if rc is None or -rc not in CRASH_SIGNALS or p.pid in self.crashes_named:
                continue
            self.crashes_named.add(p.pid)
            line = f"{label} (pid {p.pid}) died of {signal.Signals(-rc).name}"
            found.append(line)
            path = self.logs.get(label)
            if path is not None:
                with open(path, "a") as err:
                    err.write(f"==== {line}\n")
        return found

    def log_tails(self, lines=40):
        return [(label, path, tail(path, lines)) for label, path in self.logs.items()]


# A process ended by one of these crashed (kill -9 and SIGTERM are the tests' own).
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}


# ---------------------------------------------------------------------------
# watchdog

WATCHDOG_DEADLINE_S = 2.0
WATCHDOG_INTERVAL_S = 0.5


def process_stack(pid):
    """Every thread's stack of process PID (gdb -batch), or why it could not be taken."""
    try:
        out = subprocess.run(["gdb", "-batch", "-p", str(pid), "-ex", "bt"],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except FileNotFoundError:
        return "<gdb is not installed: no stack>"
    except subprocess.TimeoutExpired:
        return "<gdb did not finish within 30 s>"
    lines = [l for l in out.stdout.decode(errors="replace").splitlines()
             if l.startswith("#")]
    return "\n".join(lines) or out.stderr.decode(errors="replace")[-2000:]


class Watchdog:
    """Probes every watched node's /api/healthz every WATCHDOG_INTERVAL_S from a thread of
    its own; a node that once answered and then does not answer within WATCHDOG_DEADLINE_S
    (a timeout, not a refused connection: a stuck loop still accepts connections, a node
    that is stopping refuses them) is reported with its stack, so a stuck event loop is
    never mistaken for a slow machine. conftest.py fails the running test with the report.
    A node the test pauses on purpose (Node.pause) or stops is not probed meanwhile."""

    def __init__(self):
        self._nodes = []
        self._lock = threading.Lock()
        self._reports = []
        self._stop = threading.Event()
        self._thread = None

    def watch(self, node):
        with self._lock:
            if node not in self._nodes:
                self._nodes.append(node)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vigil-watchdog",
                                                daemon=True)
                self._thread.start()

    def take_reports(self):
        """The reports made since the last call (each a text with the node's stack)."""
        with self._lock:
            reports, self._reports = self._reports, []
        return reports

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=WATCHDOG_DEADLINE_S + 35)

    @staticmethod
    def _probe(node):
        """True: answered. False: no answer within the deadline (whatever the exception
        says: a TLS handshake that times out is an SSLError). None: refused or reset at
        once (the node is starting or stopping)."""
        started = time.monotonic()
        try:
            node.api.get("/api/healthz", timeout=(WATCHDOG_DEADLINE_S, WATCHDOG_DEADLINE_S))
            return True
        except Exception:  # noqa: BLE001 - told apart by how long it took
            return False if time.monotonic() - started >= WATCHDOG_DEADLINE_S * 0.9 else None

    def _run(self):
        armed = {}   # node -> the Popen that has answered once
        while not self._stop.wait(WATCHDOG_INTERVAL_S):
            with self._lock:
                nodes = list(self._nodes)
            for node in nodes:
                proc = node.proc
                if proc is None or proc.poll() is not None or node.paused or node.stopping:
                    continue
                started = time.monotonic()
                answered = self._probe(node)
                if answered:
                    armed[node] = proc
                elif (answered is False and proc in (armed.get(node), node.answered_proc)
                      and proc.poll() is None
                      and not node.paused and not node.stopping):
                    waited = time.monotonic() - started
                    stack = process_stack(proc.pid)
                    with self._lock:
                        self._reports.append(
                            f"watchdog: {node.label} (pid {proc.pid}) did not answer "
                            f"/api/healthz within {waited:.1f} s; its stack:\n{stack}")
                    armed.pop(node, None)   # one report per stall
                    node.answered_proc = None


# ---------------------------------------------------------------------------
# REST client

class Api:
    """JSON client for one node's REST API. Methods return (status, json-or-None).

    Thread-safe: each thread gets its own keep-alive session.
    """

    def __init__(self, address, auth=(ADMIN_USER, ADMIN_PASSWORD), scheme="http", verify=True):
        self.address = address
        self.base = f"{scheme}://{address}"
        self.auth = auth          # (user, password) for HTTP Basic, or None
        # requests' TLS verification: a CA file path, True, False, or a callable returning
        # one of those at each request (a node's certificate exists only once it has one).
        self._verify = verify
        self._local = threading.local()

    @property
    def verify(self):
        return self._verify() if callable(self._verify) else self._verify

    def _session(self):
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.auth = self.auth
            self._local.session = s
        return s

    def request(self, method, path, body=None, data=None, headers=None, params=None,
                timeout=None):
        """One request. `body` is JSON-encoded; `data` (bytes/str/iterator) is sent raw."""
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        if body is not None:
            data = json.dumps(body)
        # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        resp = self._session().request(method, self.base + path, data=data, headers=hdrs,
                                       params=params, verify=self.verify,
                                       timeout=timeout or (CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
        try:
            doc = resp.json() if resp.content else None
        except ValueError:
            doc = None
        return resp.status_code, doc

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def list_all(self, obj_type, page_size=1000, max_pages=1000):
        """Every object of a type, following pages. Returns the list of objects."""
        out = []
        for page in range(1, max_pages + 1):
            status, doc = self.get(f"/api/{obj_type}", params={"page": page, "page_size": page_size})
            if status != 200:
                raise HarnessError(f"GET /api/{obj_type} page {page}: {status} {doc}")
            results = doc["results"]
            out.extend(results)
            if not results or len(out) >= doc["count"]:
                return out
        raise HarnessError(f"GET /api/{obj_type}: more than {max_pages} pages")


# ---------------------------------------------------------------------------
# nodes and clusters

class Node:
    """One vigild process: its identity, data dir, addresses and log files."""

    def __init__(self, registry, node_id, data_dir, raft_port=None, api_port=None,
                 se_port=None, name=None, cluster=None, extra_flags=(), binary=None, tls=True,
                 raft_host=HOST, api_host=HOST):
        self.registry = registry
        # tls=True (the default, as users run it): the node serves HTTPS with the cluster's
        # self-signed certificate, which its Api verifies (ca_file), or with the one its
        # --tls-cert/--tls-key flags give (its Api then does not verify: the test checks
        # that certificate itself). tls=False: --no-tls, plain HTTP.
        self.tls = tls
        self._ca_path = None
        self.id = node_id
        self.data_dir = Path(data_dir)
        # Hosts other than 127.0.0.1 are other loopback addresses (127.0.0.2, ...); an
        # api_host of 0.0.0.0 listens on every address, and the node advertises (and the
        # test reaches it on) its raft host with that port.
        self.raft = f"{raft_host}:{raft_port or allocate_port()}"
        self.api_listen = f"{api_host}:{api_port or allocate_port()}"
        self.api_address = (f"{raft_host}:{self.api_listen.split(':')[1]}"
                            if api_host == "0.0.0.0" else self.api_listen)
        self.se_listen = addr(se_port or allocate_port())
        self.name = name or f"node-{node_id}"
        self.cluster = cluster          # "ID@HOST:PORT,..." or None
        self.extra_flags = list(extra_flags)
        self.binary = Path(binary or VIGILD)
        self.label = f"node-{node_id}" if node_id is not None else "vigild"
        self.proc = None
        self.answered_proc = None   # the process once it answered wait_healthy()
        self.paused = False     # SIGSTOPped by the test (Node.pause): the watchdog waits
        self.stopping = False   # SIGTERM sent (Node.term): the watchdog waits
        self.api = Api(self.api_address, scheme="https" if tls else "http",
                       verify=self._api_verify if tls else True)

    # command line -------------------------------------------------------
    def args(self):
        argv = [self.binary, "--data-dir", self.data_dir, "--id", str(self.id),
                "--raft", self.raft, "--api", self.api_listen,
                "--se-listen", self.se_listen, "--name", self.name]
        if self.cluster:
            argv += ["--cluster", self.cluster]
        return argv + self.auth_flags() + list(self.extra_flags)

    def auth_flags(self):
        """The test cluster's credentials; a test that brings its own TLS flags keeps them."""
        flags = ["--admin-password-file", self.registry.admin_password_file()]
        flags += list(TEST_AUTH_FLAGS)
        if not self.tls and not self.operator_tls:
            flags.append("--no-tls")
        return flags

    @property
    def operator_tls(self):
        """True when the test gives the node its own certificate (--tls-cert/--tls-key)."""
        return any(str(x).startswith("--tls-") for x in self.extra_flags)

    def ca_file(self):
        """Path of a PEM file holding the cluster's certificate as this node stores it
        (written once it exists), or None while the node has none. Every node of a cluster
        serves the same certificate: this is what `--cacert` is given in the README."""
        if self._ca_path is None:
            pem = self.cluster_tls_cert()
            if pem is None:
                return None
            path = self.registry.log_dir / f"{self.label}-{id(self):x}-ca.pem"
            path.write_text(pem if pem.endswith("\n") else pem + "\n")
            self._ca_path = str(path)
        return self._ca_path

    def _api_verify(self):
        # A node serves HTTPS only once it holds the cluster's certificate, so before the
        # file exists there is nothing to verify against (connections are refused anyway).
        if self.operator_tls:
            return False
        return self.ca_file() or False

    def cluster_tls_cert(self):
        """The cluster's self-signed certificate (PEM text) as this node stores it in
        DIR/cluster-credentials.json ("tls_cert"), or None while it has none."""
        try:
            doc = json.loads((self.data_dir / "cluster-credentials.json").read_text())
        except (OSError, ValueError):
            return None
        return doc.get("tls_cert")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def stderr_path(self):
        return self.registry.log_dir / f"{self.label}.stderr"

    def stderr_tail(self, lines=40):
        return tail(self.stderr_path, lines)

    # life cycle ----------------------------------------------------------
    def start(self, wait=True, timeout=20.0):
        if self.running:
            raise HarnessError(f"{self.label} already running (pid {self.pid})")
        if not self.binary.exists():
            raise HarnessError(f"vigild binary not found at {self.binary}: build it with "
                               f"{TEST_BUILD_HINT}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.stderr_path, "ab") as f:
            f.write(f"==== start {time.strftime('%H:%M:%S')}: "
                    f"{' '.join(map(str, self.args()))}\n".encode())
        self.paused = self.stopping = False
        self.proc = self.registry.spawn(self.label, self.args())
        if self.watchdog:
            self.registry.watchdog.watch(self)
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=20.0):
        def healthy():
            if self.proc.poll() is not None:
                raise HarnessError(f"{self.label} exited with {self.proc.returncode}; "
                                   f"stderr tail:\n{self.stderr_tail()}")
            status, doc = self.api.get("/api/healthz", timeout=(0.5, 2.0))
            return status == 200 and doc and doc.get("status") == "ok"
        try:
            wait_until(healthy, timeout, f"{self.label} /api/healthz to answer ok")
        except HarnessError as exc:
            if self.proc.poll() is None:   # alive but not answering: show where it is
                raise HarnessError(f"{exc}; its stack:\n{process_stack(self.proc.pid)}") from None
            raise
        self.answered_proc = self.proc
        return self

    def cluster_record(self):
        """This node's entry in its own /api/cluster (None until registered)."""
        status, doc = self.api.get("/api/cluster", timeout=(0.5, 2.0))
        if status == 503:
            return None  # not initialised yet (no commit since bootstrap)
        if status != 200:
            raise HarnessError(f"{self.label} /api/cluster: {status} {doc}")
        return next((n for n in doc.get("nodes") or [] if n.get("id") == self.id), None)

    def wait_registered(self, timeout=20.0):
        """Wait until the node's own record (addresses, name) is in the store."""
        def registered():
            if not self.running:
                raise HarnessError(f"{self.label} exited with {self.proc.returncode}; "
                                   f"stderr tail:\n{self.stderr_tail()}")
            return self.cluster_record()
        return wait_until(registered, timeout, f"{self.label} to appear in /api/cluster")

    # The watchdog probes this node's /api/healthz (NetnsNode, whose API is reachable only
    # from its namespace, turns this off).
    watchdog = True

    def pause(self):
        """SIGSTOP: the node stops answering on purpose (resume() continues it)."""
        self.paused = True
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def kill9(self):
        if self.running:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        return self.proc.returncode if self.proc else None

    def term(self, deadline=10.0):
        """SIGTERM and wait for the exit; returns the exit status.

        Raises (after a kill -9) when the process is still running after `deadline`.
        """
        if not self.running:
            return self.proc.returncode if self.proc else None
        self.stopping = True
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise HarnessError(f"{self.label} (pid {self.pid}) did not exit within "
                               f"{deadline}s of SIGTERM; killed with SIGKILL") from None

    def restart(self, hard=False, wait=True, timeout=30.0):
        if hard:
            self.kill9()
        else:
            self.term()
        return self.start(wait=wait, timeout=timeout)

    # views ---------------------------------------------------------------
    def runtime(self):
        status, doc = self.api.get("/api/cluster/runtime", timeout=(0.5, 2.0))
        if status == 503:
            # A new node knows no credentials until the first leader's first entries
            # arrive: not an error, a wait (wait_until retries on this exception).
            raise NotReady(f"{self.label} /api/cluster/runtime: {status} {doc}")
        if status != 200:
            raise HarnessError(f"{self.label} /api/cluster/runtime: {status} {doc}")
        return doc

    def own_state(self, runtime=None):
        """This node's entry in its own runtime's node_states (or None)."""
        runtime = runtime or self.runtime()
        for entry in runtime.get("node_states") or []:
            if entry.get("id") == runtime.get("node_id"):
                return entry
        return None

    def __repr__(self):
        return f"<Node {self.id} api={self.api_address} pid={self.pid}>"


class Cluster:
    """n vigild nodes; n > 1 are built with --cluster listing every raft address."""

    def __init__(self, registry, base_dir, n=1, extra_flags=(), heartbeat_ms=None,
                 election_timeout_ms=None, name_prefix="node", tls=True, api_hosts=None):
        self.registry = registry
        flags = list(extra_flags)
        if heartbeat_ms is not None:
            flags += ["--heartbeat-ms", str(heartbeat_ms)]
        if election_timeout_ms is not None:
            flags += ["--election-timeout-ms", str(election_timeout_ms)]
        raft_ports = [allocate_port() for _ in range(n)]
        cluster = None
        if n > 1:
            cluster = ",".join(f"{i + 1}@{addr(p)}" for i, p in enumerate(raft_ports))
        self.nodes = [Node(registry, i + 1, Path(base_dir) / f"{name_prefix}{i + 1}",
                           raft_port=raft_ports[i], cluster=cluster, extra_flags=flags,
                           tls=tls, api_host=(api_hosts or [HOST] * n)[i])
                      for i in range(n)]

    def start(self, wait=True, timeout=30.0):
        for node in self.nodes:
            node.start(wait=False)
        if wait:
            for node in self.nodes:
                node.wait_healthy(timeout)
            leader = self.wait_leader(timeout)
            for node in self.nodes:
                # every node records itself at start; the leader's view lists them all
                wait_until(lambda: any(n.get("id") == node.id for n in
                                       (leader.api.get("/api/cluster")[1] or {}).get("nodes") or []
                                       if isinstance(n, dict)),
                           timeout, f"node {node.id} to be registered in the store")
        return self

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def _leader_now(self):
        views = {}
        for node in self.nodes:
            if not node.running:
                continue
            try:
                views[node.id] = node.runtime()
            except Exception:  # noqa: BLE001 - an unreachable node has no view
                continue
        leaders = [nid for nid, rt in views.items()
                   if rt.get("leader_id") == nid and
                   (self.node(nid).own_state(rt) or {}).get("role") == ROLE_LEADER]
        if len(leaders) != 1:
            return None
        leader_id = leaders[0]
        # every running, answering node agrees
        if any(rt.get("leader_id") != leader_id for rt in views.values()):
            return None
        return self.node(leader_id)

    def wait_leader(self, timeout=30.0):
        """The node that every answering node names as leader (and says so itself)."""
        return wait_until(self._leader_now, timeout, "one leader that every running node agrees on")

    def leader(self, timeout=10.0):
        return self.wait_leader(timeout)

    def followers(self, timeout=10.0):
        leader = self.leader(timeout)
        return [n for n in self.nodes if n is not leader and n.running]

    def stop(self, deadline=10.0):
        for node in self.nodes:
            if node.running:
                node.term(deadline)


# ---------------------------------------------------------------------------
# helpers for test data

def make_ed25519_key(directory, name="se"):
    """ssh-keygen an ed25519 key pair; returns (private key path, "ssh-ed25519 AAAA...")."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}_ed25519"
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                        "-f", str(path)], check=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    kind, b64 = Path(str(path) + ".pub").read_text().split()[:2]
    return path, f"{kind} {b64}"


def tree_digest(directory, ignore=lambda p: False):
    """{relative path: sha256} of every regular file under directory."""
    import hashlib
    out = {}
    directory = Path(directory)
    for p in sorted(directory.rglob("*")):
        if p.is_file() and not ignore(p):
            out[str(p.relative_to(directory))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ---------------------------------------------------------------------------
# valid bodies for each config type (the contract's minimal fields)

def healthmonitor_body(name, http=False, **over):
    body = {"name": name, "type": "HEALTH_MONITOR_TCP", "send_interval": 5,
            "receive_timeout": 4, "successful_checks": 2, "failed_checks": 2}
    if http:
        body.update(type="HEALTH_MONITOR_HTTP", http_request="GET / HTTP/1.0",
                    http_response_codes=["HTTP_2XX"])
    body.update(over)
    return body


def pool_body(name, hm_refs=(), servers=None, **over):
    body = {"name": name, "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN",
            "servers": servers if servers is not None else
            [{"ip": "127.0.0.1", "port": 9001, "enabled": True}],
            "health_monitor_refs": list(hm_refs)}
    body.update(over)
    return body


def virtualservice_body(name, pool_ref, se_refs=None, port=10080, **over):
    body = {"name": name, "enabled": True, "vip": "127.0.0.1", "services": [{"port": port}],
            "application": "http", "pool_ref": pool_ref}
    if se_refs is not None:
        body["se_refs"] = list(se_refs)
    body.update(over)
    return body


def serviceengine_body(name, public_key, **over):
    body = {"name": name, "public_key": public_key}
    body.update(over)
    return body


# ---------------------------------------------------------------------------
# bulk writes

def write_many(api, names, workers=16, stop=None, body=None, acked=None, failed=None):
    """POST one healthmonitor per name from `workers` threads.

    Returns (acknowledged {name: uuid}, failures {name: "status/exception"}); pass your
    own `acked` / `failed` dicts to watch them fill from another thread.
    Stops taking new names once `stop` (a threading.Event) is set ("not sent").
    """
    from concurrent.futures import ThreadPoolExecutor
    body = body or healthmonitor_body

    def one(name):
        if stop is not None and stop.is_set():
            return name, None, "not sent"
        try:
            status, doc = api.post("/api/healthmonitor", body(name), timeout=(1.0, 15.0))
        except Exception as exc:  # noqa: BLE001 - recorded as an unacknowledged write
            return name, None, repr(exc)
        if status == 201 and doc and doc.get("uuid"):
            return name, doc["uuid"], None
        return name, None, f"{status} {doc}"

    acked = {} if acked is None else acked
    failed = {} if failed is None else failed
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for name, uid, err in pool.map(one, names):
            if uid:
                acked[name] = uid
            else:
                failed[name] = err
    return acked, failed


def assert_all_present(api, acked, obj_type="healthmonitor", allowed_extra=()):
    """Every acknowledged {name: uuid} is stored; nothing unexpected appeared."""
    stored = {o["name"]: o["uuid"] for o in api.list_all(obj_type)}
    missing = [n for n in acked if n not in stored]
    changed = [n for n in acked if n in stored and stored[n] != acked[n]]
    assert not missing, f"{len(missing)} acknowledged objects lost, e.g. {missing[:5]}"
    assert not changed, f"{len(changed)} objects changed uuid, e.g. {changed[:5]}"
    extra = set(stored) - set(acked) - set(allowed_extra)
    assert not extra, f"{len(extra)} objects nobody wrote, e.g. {sorted(extra)[:5]}"
    return stored
