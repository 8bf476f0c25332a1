"""The clients of a fault run and the runtime monitor, on the namespace test bed.

Every client is a thread that entered one controller host's network namespace (setns) and
talks HTTPS, verifying the cluster's self-signed certificate, to the node on that host as
the test admin (HTTP Basic), as users run it: a client next to a node that is cut off
still reaches that node and gets its answers (503 not_applied, unknown), not a timeout.
Each request gets a fresh connection: a failure to connect (or to finish the TLS
handshake) means the request was never sent (`fail`), anything that goes wrong after it
was sent is `unknown`.

The operations (history entries; see checks.py for the fields):
- create: POST /api/pool with a unique name (the set);
- write: PUT /api/pool/<uuid> of a register (its value: the first server's port);
- read: GET /api/pool/<uuid>?consistent=1; read_plain: the same without it.
"""

import base64
import http.client
import itertools
import json
import random
import ssl
import threading
import time

import harness
import testbed
from testbed import enter_namespace

CONNECT_TIMEOUT_S = 3.0
# Above the contract's 2 election timeouts for a 503, with room for a loaded machine.
REQUEST_TIMEOUT_S = 6.0


class NotSent(Exception):
    """The request never left: no connection or no TLS session."""


class TlsClient:
    """HTTPS to ADDRESS ("IP:PORT") with the cluster's CA (CA_FILE) and HTTP Basic.
    Used only from a thread inside the right namespace."""

    def __init__(self, address, ca_file, auth=(harness.ADMIN_USER, harness.ADMIN_PASSWORD)):
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.ctx = ssl.create_default_context(cafile=ca_file)
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}"}

    def request(self, method, path, body=None, timeout=REQUEST_TIMEOUT_S):
        """(status, json or None). Raises NotSent when no connection was made, another
        exception when the request was sent and no answer came."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=CONNECT_TIMEOUT_S)
        try:
            try:
                conn.connect()
            except (OSError, ssl.SSLError) as exc:
                raise NotSent(repr(exc)) from None
            conn.sock.settimeout(timeout)
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers=self.headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, (json.loads(raw) if raw else None)
        except ValueError:
            return resp.status, None


def pool_body(name, port):
    return {"name": name, "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN",
            "servers": [{"ip": "198.18.1.1", "port": port, "enabled": True}],
            "health_monitor_refs": []}


def write_outcome(status, doc, ok_status):
    """ok / fail / unknown / None (an answer the contract does not allow) of a write."""
    if status == ok_status:
        return "ok"
    if status == 503 and isinstance(doc, dict):
        if doc.get("outcome") == "not_applied":
            return "fail"
        if doc.get("outcome") == "unknown":
            return "unknown"
    return None


class Workload:
    """The shared state of the clients: the registers, the value and name counters, the
    history and the unexpected answers. NODES: the run's nodes (with .host, .incarnation)."""

    def __init__(self, nodes, ca_file, registers, run_tag, rng_seed):
        self.nodes = nodes
        self.ca_file = ca_file
        self.registers = registers          # {key: (uuid, name)}
        self.run_tag = run_tag
        self.rng_seed = rng_seed
        self.history = []
        self.unexpected = []
        self._lock = threading.Lock()
        self._values = itertools.count(1000)
        self._names = itertools.count(1)
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.threads = []

    def now(self):
        return time.monotonic() - self.t0

    def next_value(self):
        with self._lock:
            return next(self._values)

    def next_name(self):
        with self._lock:
            return f"set-{self.run_tag}-{next(self._names)}"

    def record(self, op):
        with self._lock:
            self.history.append(op)

    def start(self, clients_per_node=2, think_s=0.05):
        for node in self.nodes:
            for i in range(clients_per_node):
                name = f"c{node.id}{i}"
                t = threading.Thread(target=self._client, args=(name, node, think_s),
                                     name=f"faults-{name}", daemon=True)
                t.start()
                self.threads.append(t)

    def finish(self, timeout=30.0):
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return [t.name for t in self.threads if t.is_alive()]

    # one client -------------------------------------------------------------------------
    def _client(self, name, node, think_s):
        enter_namespace(node.host.ns)
        client = TlsClient(f"{node.host.ip}:{harness_api_port()}", self.ca_file)
        rng = random.Random(f"{self.rng_seed}-{name}")
        keys = sorted(self.registers)
        while not self.stop.is_set():
            roll = rng.random()
            if roll < 0.25:
                self._one(client, name, node, "create", self.next_name(), None)
            else:
                key = rng.choice(keys)
                f = "write" if roll < 0.55 else "read" if roll < 0.8 else "read_plain"
                self._one(client, name, node, f, key,
                          self.next_value() if f == "write" else None)
            self.stop.wait(think_s)

    def _one(self, client, process, node, f, key, value):
        op = {"process": process, "node": node.id, "incarnation": node.incarnation,
              "f": f, "key": key, "value": value, "invoke": self.now(), "complete": None,
              "outcome": "unknown", "detail": ""}
        try:
            status, doc = self._send(client, f, key, value)
        except NotSent as exc:
            op.update(outcome="fail", detail=f"not sent: {exc}"[:200], complete=self.now())
            self.record(op)
            return
        except Exception as exc:  # noqa: BLE001 - sent, no answer: unknown
            op.update(detail=f"no answer: {exc!r}"[:200])
            self.record(op)
            return
        op["complete"] = self.now()
        if node.incarnation != op["incarnation"]:
            op["incarnation"] = None        # the node restarted meanwhile
        self._classify(op, status, doc)
        self.record(op)

    def _send(self, client, f, key, value):
        if f == "create":
            return client.request("POST", "/api/pool", pool_body(key, 9001))
        uuid, name = self.registers[key]
        if f == "write":
            return client.request("PUT", f"/api/pool/{uuid}", pool_body(name, value))
        suffix = "?consistent=1" if f == "read" else ""
        return client.request("GET", f"/api/pool/{uuid}{suffix}")

    def _classify(self, op, status, doc):
        f = op["f"]
        if f in ("read", "read_plain"):
            if status == 200 and isinstance(doc, dict):
                op.update(outcome="ok", value=doc["servers"][0]["port"])
            else:
                op.update(outcome="fail", detail=f"{status} {str(doc)[:120]}")
                if status != 503:
                    self.unexpected.append(f"{f} {op['key']} on node {op['node']}: {status} {doc}")
            return
        outcome = write_outcome(status, doc, 201 if f == "create" else 200)
        if outcome is None:
            self.unexpected.append(f"{f} {op['key']} on node {op['node']} at "
                                   f"{op['invoke']:.3f}: {status} {str(doc)[:200]}")
            outcome = "unknown"
        op["outcome"] = outcome
        op["detail"] = "" if outcome == "ok" else f"{status} {str(doc)[:160]}"
        if f == "create" and outcome == "ok":
            op["value"] = doc.get("uuid")


def harness_api_port():
    return testbed.API_PORT


class Monitor:
    """Polls every node's /api/cluster/runtime (each from a thread in its host's namespace)
    every INTERVAL_S: samples (time, node id, term, leader id) for the leader check."""

    def __init__(self, workload, interval_s=0.2):
        self.workload = workload
        self.interval_s = interval_s
        self.samples = []
        self.errors = 0
        self._lock = threading.Lock()
        self.threads = []

    def start(self):
        for node in self.workload.nodes:
            t = threading.Thread(target=self._poll, args=(node,), name=f"monitor-{node.id}",
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _poll(self, node):
        enter_namespace(node.host.ns)
        client = TlsClient(f"{node.host.ip}:{harness_api_port()}", self.workload.ca_file)
        stop = self.workload.stop
        while not stop.wait(self.interval_s):
            if node.paused or not node.running:
                continue
            try:
                status, doc = client.request("GET", "/api/cluster/runtime", timeout=2.0)
            except Exception:  # noqa: BLE001 - a node that does not answer has no view
                with self._lock:
                    self.errors += 1
                continue
            if status == 200 and isinstance(doc, dict):
                with self._lock:
                    self.samples.append((self.workload.now(), node.id, doc.get("term"),
                                         doc.get("leader_id")))

    def finish(self, timeout=10.0):
        for t in self.threads:
            t.join(timeout)


class VipWatch:
    """Samples which hosts hold the cluster IP (`ip -o addr` of each host's eth0) every
    INTERVAL_S, from the root namespace: (time, {node id: holds})."""

    def __init__(self, workload, vip, interval_s=0.1):
        self.workload = workload
        self.vip = vip
        self.interval_s = interval_s
        self.samples = []
        self.thread = threading.Thread(target=self._run, name="vip-watch", daemon=True)

    def start(self):
        self.thread.start()

    def _run(self):
        stop = self.workload.stop
        while not stop.wait(self.interval_s):
            t = self.workload.now()
            try:
                row = {n.id: n.host.has_address(self.vip) for n in self.workload.nodes}
            except Exception:  # noqa: BLE001 - `ip` stuck behind the rtnl lock: no sample
                continue
            self.samples.append((t, row))

    def finish(self, timeout=10.0):
        self.thread.join(timeout)
