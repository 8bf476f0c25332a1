"""A test bed of hosts: Linux network namespaces joined by a bridge.

Each host (controller, SE, backend, client) is a network namespace with one interface,
`eth0`, the end of a veth pair whose other end is a port of a Linux bridge. The bridge
lives in a namespace of its own (the "switch"), so nothing is added to the root
namespace: the machine's own firewall and routes play no part. Addresses come from the
benchmarking range 198.18.0.0/15 (RFC 2544); every host is on SUBNET (198.18.0.0/24).

    bed = Testbed(log_dir)                # needs root; raises TestbedUnavailable otherwise
    ctl = bed.add_host("ctl1", "controller")
    ctl.ip, ctl.mac, ctl.ns                 # 198.18.0.11, "aa:..", "vgt1234-5f3a-ctl1"
    proc = ctl.spawn(registry, "label", [binary, ...])   # `ip netns exec NS binary ...`
    ctl.add_service(start_fn)               # started again by power_on()/reboot()
    bed.reboot(ctl)                         # every process killed, link down, up, restart
    bed.isolate(ctl); bed.heal()            # a partition: links cut, then restored
    bed.partition([ctl1], [ctl2, ctl3])     # groups on separate bridges
    bed.close()                             # kills every process by PID, deletes it all

Names are unique per run ("vgt<pid>-<random>-<host>"), so leftovers of another run never
clash; a new test bed also deletes leftovers of runs whose pytest process is gone.

Talking to a host: `ip netns exec` for commands (`bed.run(host, argv)`), and `NsApi`
for HTTP: a thread that entered the host's namespace (setns) makes the requests, so the
test reaches a node on its own loopback even when the host is cut off.

The `controllers` helpers at the end build vigild nodes (harness.Node) that run inside
the hosts with the same ports on every host, as on real machines.
"""

import base64
import ctypes
import http.client
import json
import os
import queue
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import harness
from harness import HarnessError, wait_until

SUBNET = "198.18.0"
PREFIX = 24
VIP = f"{SUBNET}.100"
# First host number per role: controllers .11-, SEs .21-, backends .31-, clients .41-.
ROLE_BASE = {"controller": 11, "se": 21, "backend": 31, "client": 41}
NAME_PREFIX = "vgt"

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class TestbedUnavailable(Exception):
    """Namespaces cannot be made here (not root, no `ip`, no veth/bridge support)."""


def _ip(*args, check=True, timeout=10):
    """Runs `ip ARGS`; returns stdout. Raises HarnessError (with stderr) on failure."""
    proc = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise HarnessError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def netns_pids(ns):
    """PIDs of every process in namespace NS (empty when it is gone)."""
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=10).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def kill_netns_processes(ns, registry_procs=()):
    """SIGKILL every process in NS by PID, then reap those we started (Popen objects)."""
    for _ in range(5):
        pids = netns_pids(ns)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    for p in registry_procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _sweep_leftovers():
    """Deletes namespaces of earlier runs whose pytest process is gone."""
    try:
        names = _ip("netns", "list", check=False).split("\n")
    except (OSError, subprocess.SubprocessError):
        return
    for line in names:
        name = line.split(" ")[0]
        m = re.match(rf"^{NAME_PREFIX}(\d+)-[0-9a-f]+-", name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        kill_netns_processes(name)
        _ip("netns", "del", name, check=False)


# ---------------------------------------------------------------------------
# HTTP from inside a namespace

def enter_namespace(ns):
    """The calling thread joins network namespace NS (its later sockets live there)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


class NetnsWorker:
    """A thread that entered network namespace NS and runs the callables given to call().

    Sockets made by that thread belong to NS. One worker per host, started lazily.
    """

    def __init__(self, ns):
        self.ns = ns
        self._q = queue.Queue()
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._main, name=f"netns-{ns}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise HarnessError(self._error)

    def _main(self):
        try:
            enter_namespace(self.ns)
        except OSError as exc:
            self._error = f"cannot enter namespace {self.ns}: {exc}"
            self._ready.set()
            return
        self._ready.set()
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, box, done = item
            try:
                box.append((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box.append((False, exc))
            done.set()

    def call(self, fn, timeout=30.0):
        """fn() run in the namespace; its result, or its exception raised here."""
        box, done = [], threading.Event()
        self._q.put((fn, box, done))
        if not done.wait(timeout):
            raise HarnessError(f"call in namespace {self.ns} took over {timeout}s")
        ok, value = box[0]
        if ok:
            return value
        raise value

    def stop(self):
        self._q.put(None)


def admin_credentials():
    """(user, password) of the harness's test admin, or None when it has none."""
    user = getattr(harness, "ADMIN_USER", None)
    password = getattr(harness, "ADMIN_PASSWORD", None)
    return (user, password) if user and password else None


class NsApi:
    """The subset of harness.Api that the harness's Node and Cluster use (get/request),
    made from inside a host's namespace, to ADDRESS ("HOST:PORT") as seen from there."""

    def __init__(self, host, address, auth=None, tls=False):
        self.host = host
        self.address = address
        self.tls = tls     # HTTPS, the certificate not checked (the browser test checks it)
        self.base = f"{'https' if tls else 'http'}://{address}"
        # The harness's test admin when it has one (HTTP Basic), else no credentials.
        self.auth = auth or admin_credentials()

    def request(self, method, path, body=None, data=None, headers=None, params=None,
                timeout=None):
        if params:
            from urllib.parse import urlencode
            path = path + ("&" if "?" in path else "?") + urlencode(params)
        if body is not None:
            data = json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        hdrs = {"Content-Type": "application/json"}
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            hdrs["Authorization"] = f"Basic {token}"
        hdrs.update(headers or {})
        if isinstance(timeout, tuple):
            timeout = sum(timeout)
        timeout = timeout or harness.CONNECT_TIMEOUT_S + harness.READ_TIMEOUT_S
        host, port = self.address.rsplit(":", 1)

        def one():
            if self.tls:
                import ssl
                conn = http.client.HTTPSConnection(host, int(port), timeout=timeout,
                                                   context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                raw = resp.read()
            finally:
                conn.close()
            try:
                doc = json.loads(raw) if raw else None
            except ValueError:
                doc = None
            return resp.status, doc

        return self.host.worker().call(one, timeout=timeout + 5)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# ---------------------------------------------------------------------------
# hosts and the bed

class Host:
    """One host: a namespace with eth0 on the bridge. Made by Testbed.add_host."""

    def __init__(self, bed, name, role, number):
        self.bed = bed
        self.name = name
        self.role = role
        self.ns = f"{bed.run_id}-{name}"
        self.port = name           # its bridge port (the veth end in the switch namespace)
        self.ip = f"{SUBNET}.{number}"
        self.mac = None
        self.services = []         # callables that start the host's processes
        self.procs = []            # Popen of every process started on the host
        self._worker = None
        self.powered = True
        self.segment = "br0"       # the bridge its cable is on, None when cut

    def argv(self, argv):
        """ARGV as run inside this host."""
        return ["ip", "netns", "exec", self.ns] + [str(a) for a in argv]

    def run(self, argv, timeout=15, check=True):
        """Runs ARGV inside the host to completion; returns CompletedProcess (text)."""
        proc = subprocess.run(self.argv(argv), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise HarnessError(f"{self.name}: {' '.join(map(str, argv))} exited "
                               f"{proc.returncode}: {proc.stderr.strip()[-500:]}")
        return proc

    def spawn(self, registry, label, argv, **kw):
        """Starts ARGV inside the host through REGISTRY (so teardown stops it by PID).
        `ip netns exec` execs ARGV, so the Popen's PID is the program's."""
        proc = registry.spawn(label, self.argv(argv), **kw)
        self.procs.append(proc)
        return proc

    def add_service(self, start):
        """START() (no arguments) starts one of the host's processes; power_on runs it."""
        self.services.append(start)

    def worker(self):
        if self._worker is None:
            self._worker = NetnsWorker(self.ns)
        return self._worker

    def addresses(self, dev="eth0"):
        """IPv4 addresses on DEV, as "ADDR/PREFIX" strings."""
        out = _ip("-n", self.ns, "-o", "-4", "addr", "show", "dev", dev, check=False)
        return re.findall(r"inet (\S+)", out)

    def has_address(self, addr, dev="eth0"):
        return any(a.split("/")[0] == addr for a in self.addresses(dev))

    def neighbour(self, addr, dev="eth0"):
        """(lladdr or None, state) of this host's neighbour entry for ADDR, or None."""
        out = _ip("-n", self.ns, "neigh", "show", addr, "dev", dev, check=False).strip()
        if not out:
            return None
        m = re.search(r"lladdr (\S+)", out)
        return (m.group(1) if m else None, out.split()[-1])

    def __repr__(self):
        return f"<Host {self.name} {self.ip} ns={self.ns}>"


class Testbed:
    """Hosts on one bridge. See the module's docstring. close() always cleans up."""

    def __init__(self, log_dir=None):
        if os.geteuid() != 0:
            raise TestbedUnavailable("network namespaces need root (running as uid "
                                     f"{os.geteuid()})")
        _sweep_leftovers()
        self.run_id = f"{NAME_PREFIX}{os.getpid()}-{random.getrandbits(16):04x}"
        self.switch = f"{self.run_id}-sw"
        self.log_dir = Path(log_dir) if log_dir else None
        self.hosts = {}
        self._counts = {}
        self._extra_bridges = []
        self._closed = False
        try:
            _ip("netns", "add", self.switch)
        except (HarnessError, OSError) as exc:
            raise TestbedUnavailable(f"cannot create a network namespace: {exc}") from exc
        try:
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            _ip("-n", self.switch, "link", "set", "lo", "up")
        except HarnessError as exc:
            self.close()
            raise TestbedUnavailable(f"cannot create a bridge: {exc}") from exc

    # building --------------------------------------------------------------
    def add_host(self, name, role="controller"):
        """A new host NAME (short: it names the bridge port) with the next address of
        ROLE's range. Returns the Host."""
        if role not in ROLE_BASE:
            raise ValueError(f"role {role!r}: one of {sorted(ROLE_BASE)}")
        if name in self.hosts or len(name) > 15:
            raise ValueError(f"host name {name!r}: taken or longer than 15 characters")
        number = ROLE_BASE[role] + self._counts.get(role, 0)
        self._counts[role] = self._counts.get(role, 0) + 1
        host = Host(self, name, role, number)
        self.hosts[name] = host
        try:
            _ip("netns", "add", host.ns)
            _ip("-n", self.switch, "link", "add", host.port, "type", "veth",
                "peer", "name", "eth0", "netns", host.ns)
            _ip("-n", self.switch, "link", "set", host.port, "master", "br0", "up")
            _ip("-n", host.ns, "link", "set", "lo", "up")
            _ip("-n", host.ns, "addr", "add", f"{host.ip}/{PREFIX}", "dev", "eth0")
            _ip("-n", host.ns, "link", "set", "eth0", "up")
        except HarnessError as exc:
            raise TestbedUnavailable(f"cannot create host {name}: {exc}") from exc
        out = _ip("-n", host.ns, "-o", "link", "show", "eth0")
        host.mac = re.search(r"link/ether (\S+)", out).group(1)
        return host

    def run(self, host, argv, **kw):
        return host.run(argv, **kw)

    # faults ------------------------------------------------------------------
    def set_link(self, host, up):
        """The host's own interface up or down (what a power cycle does)."""
        _ip("-n", host.ns, "link", "set", "eth0", "up" if up else "down")

    def power_off(self, host):
        """Every process in the host killed (SIGKILL, by PID), then its link down."""
        kill_netns_processes(host.ns, host.procs)
        self.set_link(host, False)
        host.powered = False

    def power_on(self, host):
        """Link up, then the host's services started again (in the order added).
        Addresses configured at run time stay (as on a host whose processes crashed): a
        restarted program must clean up after itself."""
        self.set_link(host, True)
        host.powered = True
        for start in host.services:
            start()

    def reboot(self, host, down_s=1.0):
        """A host reboot: power_off, DOWN_S seconds down, power_on."""
        self.power_off(host)
        time.sleep(down_s)
        self.power_on(host)

    def isolate(self, *hosts):
        """Cuts each host's cable (its bridge port down): it reaches nobody."""
        for host in hosts:
            _ip("-n", self.switch, "link", "set", host.port, "down")
            host.segment = None

    def partition(self, *groups):
        """Hosts in the same group reach each other and no one else. Hosts in no group
        stay on the main bridge (with each other)."""
        for i, group in enumerate(groups):
            bridge = f"br{i + 1}"
            _ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
            _ip("-n", self.switch, "link", "set", bridge, "up")
            self._extra_bridges.append(bridge)
            for host in group:
                _ip("-n", self.switch, "link", "set", host.port, "master", bridge)
                host.segment = bridge

    def heal(self):
        """Every cable back on the main bridge and up."""
        for host in self.hosts.values():
            _ip("-n", self.switch, "link", "set", host.port, "master", "br0", "up")
            host.segment = "br0"
        for bridge in self._extra_bridges:
            _ip("-n", self.switch, "link", "del", bridge, check=False)
        self._extra_bridges = []

    def connected(self, host):
        """True when the host's cable is plugged into the main bridge and up and the host
        is powered (as the test bed set it)."""
        if not host.powered:
            return False
        out = _ip("-n", self.switch, "-o", "link", "show", host.port, check=False)
        return "master br0" in out and "state UP" in out

    def connected_fast(self, host):
        """connected() from the test bed's own record (no command run)."""
        return host.powered and host.segment == "br0"

    # teardown --------------------------------------------------------------------
    def close(self):
        """Kills every process in every host by PID and deletes the namespaces (the veths
        and bridges go with them). Safe to call twice; never raises."""
        if self._closed:
            return
        self._closed = True
        for host in self.hosts.values():
            if host._worker is not None:
                host._worker.stop()
            try:
                kill_netns_processes(host.ns, host.procs)
            except Exception:  # noqa: BLE001 - keep cleaning up
                pass
        # Deleting the links first does the kernel's slow part (device unregistering,
        # under the rtnl lock) here, not in the background while the next test runs.
        for host in self.hosts.values():
            try:
                _ip("-n", self.switch, "link", "del", host.port, check=False, timeout=60)
            except Exception:  # noqa: BLE001 - keep cleaning up
                pass
        for ns in [h.ns for h in self.hosts.values()] + [self.switch]:
            try:
                kill_netns_processes(ns)
                _ip("netns", "del", ns, check=False)
            except Exception:  # noqa: BLE001 - keep cleaning up
                pass


# ---------------------------------------------------------------------------
# controllers on hosts

RAFT_PORT = 7000
API_PORT = 8080
SE_PORT = 5098


class NetnsNode(harness.Node):
    """A vigild node running on HOST with the same ports on every host: raft and SE
    channel on the host's address, the REST API on the wildcard (so it also answers on
    the cluster IP). Its `api` talks to it on the host's own loopback, over plain HTTP
    (--no-tls): the cluster-IP tests are about addresses and failover, and their helpers
    (NsApi, curl from other namespaces) speak HTTP; tls=True runs it with the defaults
    (HTTPS with the cluster's certificate), as the dashboard's cluster-IP test does."""

    watchdog = False   # its API answers inside its namespace only

    def __init__(self, registry, node_id, data_dir, host, cluster=None, extra_flags=(),
                 tls=False):
        super().__init__(registry, node_id, data_dir, raft_port=RAFT_PORT, api_port=API_PORT,
                         se_port=SE_PORT, cluster=cluster, extra_flags=extra_flags, tls=tls)
        self.host = host
        self.raft = f"{host.ip}:{RAFT_PORT}"
        self.api_listen = self.api_address = f"0.0.0.0:{API_PORT}"
        self.se_listen = f"{host.ip}:{SE_PORT}"
        self.api = NsApi(host, f"127.0.0.1:{API_PORT}", tls=tls)
        host.add_service(lambda: self.start(wait=False))

    def args(self):
        return self.host.argv(super().args())

    def start(self, wait=True, timeout=20.0):
        super().start(wait=wait, timeout=timeout)
        self.host.procs.append(self.proc)
        return self


class NetnsCluster(harness.Cluster):
    """N vigild nodes, one per controller host, as one cluster (--cluster lists all)."""

    def __init__(self, registry, base_dir, hosts, extra_flags=(), tls=False):
        self.registry = registry
        cluster = ",".join(f"{i + 1}@{h.ip}:{RAFT_PORT}" for i, h in enumerate(hosts))
        self.nodes = [NetnsNode(registry, i + 1, Path(base_dir) / f"node{i + 1}", h,
                                cluster=cluster if len(hosts) > 1 else None,
                                extra_flags=extra_flags, tls=tls)
                      for i, h in enumerate(hosts)]

    def by_host(self, host):
        return next(n for n in self.nodes if n.host is host)


def wait_for(cond, timeout, what, interval=0.02):
    """harness.wait_until with a finer default interval (failover times are measured)."""
    return wait_until(cond, timeout, what, interval=interval)
