"""Helpers for the cluster IP tests: three controllers and a client on the test bed, a
background sampler of who holds the VIP, the client's view (curl, neighbour entry), and
the measurements printed at the end of the run (conftest.py)."""

import subprocess
import threading
import time

import harness
import testbed
from harness import HarnessError
from testbed import NetnsCluster, wait_for

VIP = testbed.VIP
VIP_CIDR = f"{testbed.VIP}/{testbed.PREFIX}"
API_PORT = testbed.API_PORT
ELECTION_TIMEOUT_S = 0.3          # vigild's default
FAILOVER_DEADLINE_S = 20.0        # generous: the measured times are reported

MEASUREMENTS = []                 # (name, seconds)


def record_measurement(name, seconds):
    MEASUREMENTS.append((name, seconds))
    print(f"measured: {name}: {seconds * 1000:.0f} ms")


class VipBed:
    """N controller hosts running a vigild cluster with --vip, and one client host."""

    def __init__(self, bed, base_dir, n=3, extra_flags=(), tls=False):
        self.bed = bed
        self.tls = tls
        self.hosts = [bed.add_host(f"ctl{i + 1}", "controller") for i in range(n)]
        self.client = bed.add_host("client1", "client")
        self.cluster = NetnsCluster(bed.registry, base_dir, self.hosts,
                                    extra_flags=["--vip", VIP_CIDR, "--vip-dev", "eth0",
                                                 *extra_flags], tls=tls)
        self.nodes = self.cluster.nodes
        self.last_view_error = {}

    def start(self, timeout=30.0):
        self.cluster.start(timeout=timeout)
        return self.wait_vip_on_leader(timeout=timeout)

    # who holds it ----------------------------------------------------------------------
    def holders(self, nodes=None):
        """Nodes whose host carries the VIP (live or not)."""
        return [n for n in (nodes or self.nodes) if n.host.has_address(VIP)]

    def view(self, node):
        """The node's /api/cluster/runtime, or None when it does not answer (the reason is
        kept in self.last_view_error[node.id] for wait messages)."""
        if not node.running:
            self.last_view_error[node.id] = "not running"
            return None
        try:
            status, doc = node.api.get("/api/cluster/runtime", timeout=2.0)
        except Exception as exc:  # noqa: BLE001 - a node that does not answer has no view
            self.last_view_error[node.id] = repr(exc)
            return None
        if status != 200:
            self.last_view_error[node.id] = f"{status} {doc}"
            return None
        return doc

    def leads(self, node):
        rt = self.view(node)
        return rt is not None and rt.get("leader_id") == node.id

    def wait_vip_on_leader(self, candidates=None, timeout=FAILOVER_DEADLINE_S):
        """Waits until exactly one running candidate holds the VIP and says it leads;
        returns that node."""
        candidates = candidates or self.nodes

        def one():
            live = [n for n in candidates if n.running]
            held = [n for n in live if n.host.has_address(VIP)]
            if len(held) == 1 and self.leads(held[0]):
                return held[0]
            return None
        try:
            return wait_for(one, timeout, f"the VIP on the leader among "
                                          f"{[n.id for n in candidates]}")
        except HarnessError as exc:
            raise HarnessError(f"{exc}; holders at the end: {[n.id for n in self.holders()]}"
                               f", last view errors: {self.last_view_error}") from None

    # the client's view -------------------------------------------------------------------
    def client_runtime(self, timeout=1.0):
        """The runtime answered on VIP:port from the client host, or None."""
        auth = testbed.admin_credentials()
        proc = self.client.run(["curl", "-s", "-m", str(timeout), *(["-k"] if self.tls else []),
                                *(["-u", f"{auth[0]}:{auth[1]}"] if auth else []),
                                f"{'https' if self.tls else 'http'}://{VIP}:{API_PORT}"
                                "/api/cluster/runtime"],
                               check=False, timeout=timeout + 10)
        if proc.returncode != 0:
            return None
        try:
            import json
            return json.loads(proc.stdout)
        except ValueError:
            return None

    def wait_client_reaches(self, node, timeout=FAILOVER_DEADLINE_S):
        def answered():
            rt = self.client_runtime()
            return rt is not None and rt.get("node_id") == node.id
        return wait_for(answered, timeout, f"the client's curl to the VIP to answer from "
                                           f"node {node.id}", interval=0.05)

    def client_mac_for_vip(self):
        entry = self.client.neighbour(VIP)
        return entry[0] if entry else None

    def wait_client_mac(self, node, timeout=FAILOVER_DEADLINE_S):
        return wait_for(lambda: self.client_mac_for_vip() == node.host.mac, timeout,
                        f"the client's neighbour entry for {VIP} to name node {node.id}'s "
                        f"MAC {node.host.mac} (now {self.client.neighbour(VIP)})")

    def assert_only_holder_for(self, node, seconds):
        """For SECONDS: NODE holds the VIP and no other host does."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            held = [n.id for n in self.holders()]
            assert held == [node.id], f"VIP holders {held}, expected only node {node.id}"
            time.sleep(0.05)


class VipSampler:
    """Samples every node in the background: (time, id, counted, holds). A node counts
    (is live and quorum-holding) when its process runs, its host is plugged into the main
    bridge with the majority, and it knows a leader (a node that is still starting does
    not: it has not yet removed a stale copy of the VIP). Its runtime is read before its
    addresses, so a counted node has always passed its start-up clean-up."""

    def __init__(self, vb, interval=0.03):
        self.vb = vb
        self.interval = interval
        self.samples = []
        self.skipped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vip-sampler", daemon=True)
        self.error = None

    def start(self):
        self._thread.start()
        return self

    def _counted(self, node):
        if not node.running or not self.vb.bed.connected_fast(node.host):
            return False
        rt = self.vb.view(node)
        return rt is not None and bool(rt.get("leader_id"))

    def _run(self):
        try:
            while not self._stop.is_set():
                t = time.monotonic()
                row = []
                try:
                    for node in self.vb.nodes:
                        counted = self._counted(node)
                        row.append((node.id, counted, node.host.has_address(VIP)))
                except subprocess.TimeoutExpired:
                    self.skipped += 1  # `ip` stuck behind the kernel's rtnl lock: no sample
                    continue
                self.samples.append((t, row))
                self._stop.wait(self.interval)
        except Exception as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error:
            raise HarnessError(f"sampler failed: {self.error!r}")
        return self

    def double_holders(self):
        """Samples where two or more counted nodes held the VIP."""
        return [(t, row) for t, row in self.samples
                if sum(1 for _, counted, holds in row if counted and holds) >= 2]

    def assert_never_two(self):
        bad = self.double_holders()
        assert len(self.samples) >= 10, f"only {len(self.samples)} samples taken"
        assert not bad, (f"{len(bad)} of {len(self.samples)} samples had two live quorum-"
                         f"holding holders of the VIP, first: {bad[0]}")

    def first_time(self, pred, since=0.0):
        """Time of the first sample at or after SINCE whose row satisfies PRED."""
        for t, row in self.samples:
            if t >= since and pred({nid: (c, h) for nid, c, h in row}):
                return t
        return None
