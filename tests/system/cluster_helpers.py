"""Helpers for the three-node system tests (issue 3: test_cluster.py, issue 4:
test_seed_scenarios.py). Processes are still started only through harness.py; this module
adds cluster-level waits, reboots, background clients and comparisons.

Conventions: every wait has a deadline (harness.wait_until); the only sleep is the one
that keeps a rebooted node down for at least 3 election timeouts.
"""

import itertools
import os
import threading
import time
from pathlib import Path

import harness
from harness import HarnessError, wait_until

# vigild's defaults (contract: --heartbeat-ms 50 --election-timeout-ms 300).
ELECTION_TIMEOUT_S = 0.3
# A "reboot" keeps the node down at least 3 election timeouts.
DOWN_S = 3 * ELECTION_TIMEOUT_S + 0.1

READY = "Ready"
NOT_RESPONSIVE = "Not Responsive"
ERRORS = "Errors"
RESTORING = "Restoring"
WAITING = "Waiting for Service Engines"
COPYING = "Cluster copying DB from leader"
ACTIVE = "CLUSTER_ACTIVE"
INACTIVE = "CLUSTER_INACTIVE"
HA_ACTIVE = "CLUSTER_UP_HA_ACTIVE"
HA_COMPROMISED = "CLUSTER_UP_HA_COMPROMISED"

# The contract's table of legal moves (from -> set of to); "any -> Not Responsive" too.
LEGAL_MOVES = {
    NOT_RESPONSIVE: {ERRORS, RESTORING},
    ERRORS: {RESTORING},
    RESTORING: {WAITING},
    WAITING: {COPYING},
    COPYING: {READY},
    READY: {COPYING},
}

OBJECT_TYPES = ("healthmonitor", "pool", "virtualservice", "serviceengine")


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------
# cluster life cycle

def three_nodes(factory, extra_flags=(), start=True, **kwargs):
    """A 3-node cluster on vigild's default timings, started and stable (see wait_stable)."""
    cluster = factory(3, start=False, extra_flags=extra_flags, **kwargs)
    if start:
        cluster.start()
        wait_stable(cluster)
    return cluster


def running(cluster):
    return [n for n in cluster.nodes if n.running]


def runtimes(nodes):
    return {n.id: n.runtime() for n in nodes}


def wait_stable(cluster, timeout=20.0, expect_state=None):
    """Every running node names the same leader, reports Ready, sees every running node
    CLUSTER_ACTIVE (every node registered, with its name) and, when all nodes run, the
    state CLUSTER_UP_HA_ACTIVE. Returns the leader Node."""
    nodes = running(cluster)
    if expect_state is None:
        expect_state = HA_ACTIVE if len(nodes) == len(cluster.nodes) else HA_COMPROMISED
    ids = {n.id for n in nodes}
    last = {}

    def stable():
        views = runtimes(nodes)
        last["views"] = {nid: (rt["leader_id"], rt["cluster_state"]["status"],
                               rt["cluster_state"]["state"], rt["cluster_state"]["reason"],
                               [(e["id"], e["state"]) for e in rt["node_states"]])
                         for nid, rt in views.items()}
        leaders = {rt["leader_id"] for rt in views.values()}
        if len(leaders) != 1 or None in leaders:
            return None
        for rt in views.values():
            cs = rt["cluster_state"]
            if cs["status"] != READY or cs["state"] != expect_state:
                return None
            states = {e["id"]: e for e in rt["node_states"]}
            for nid in ids:
                e = states.get(nid)
                if not e or e["state"] != ACTIVE or not e.get("name"):
                    return None
        return cluster.node(leaders.pop())

    try:
        return wait_until(stable, timeout,
                          f"nodes {sorted(ids)} to agree on a leader, all Ready / {expect_state} "
                          f"and CLUSTER_ACTIVE")
    except HarnessError as exc:
        raise HarnessError(f"{exc}; last views (node: leader_id, status, state, reason, "
                           f"node_states): {last.get('views')}") from None


def cpu_seconds(pid):
    """User + system CPU time of process PID so far, in seconds (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sanitized_build(binary):
    """True when BINARY is an ASan build (it carries the sanitizer's runtime hooks)."""
    return b"__asan_init" in Path(binary).read_bytes()


def assert_idle(nodes, seconds=5.0, max_share=None):
    """Every node's CPU time over SECONDS of wall time stays below MAX_SHARE of one core:
    an idle cluster only heartbeats and polls its peers, about 2 % of a core on the release
    build and 10-13 % on the ASan build (bounds 10 % and 25 %); a spinning event loop burns
    a whole core."""
    if max_share is None:
        max_share = 0.25 if sanitized_build(nodes[0].binary) else 0.10
    before = {n.label: (n.pid, cpu_seconds(n.pid)) for n in nodes}
    t0 = time.monotonic()
    time.sleep(seconds)  # the measuring window itself, not a wait for a condition
    wall = time.monotonic() - t0
    shares = {label: (cpu_seconds(pid) - c0) / wall for label, (pid, c0) in before.items()}
    busy = {label: f"{share:.0%}" for label, share in shares.items() if share > max_share}
    assert not busy, (f"nodes busy while idle (share of one core over {wall:.1f} s, bound "
                      f"{max_share:.0%}): {busy}")
    return shares


def stop(node, how):
    """Stop a node by kill -9 ("kill9") or SIGTERM ("term")."""
    if how == "kill9":
        node.kill9()
    elif how == "term":
        rc = node.term(deadline=15.0)
        assert rc == 0, f"{node.label} exited with {rc} after SIGTERM"
    else:
        raise ValueError(how)


def reboot(node, how, down_s=DOWN_S, wait=True):
    """Stop (kill -9 or SIGTERM), stay down >= 3 election timeouts, restart, same data dir."""
    stop(node, how)
    time.sleep(down_s)  # the reboot's down time, not a wait for a condition
    node.start(wait=wait)
    return node


def stop_many(nodes, how):
    """Stop several nodes; SIGTERMs run in parallel so that none outlives the others long."""
    if how == "kill9":
        for n in nodes:
            n.kill9()
        return
    errors = []

    def one(n):
        try:
            stop(n, how)
        except Exception as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)
    threads = [threading.Thread(target=one, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------
# views

def status_of(node):
    return node.runtime()["cluster_state"]


def history(node):
    return node.runtime()["status_history"]


def wait_status(node, status, timeout=15.0, reason_contains=None):
    def check():
        cs = status_of(node)
        if cs["status"] != status:
            return None
        if reason_contains and reason_contains not in (cs.get("reason") or ""):
            return None
        return cs
    return wait_until(check, timeout, f"{node.label} to report status {status!r}"
                      + (f" with reason naming {reason_contains!r}" if reason_contains else ""))


def node_state(observer, node_id):
    for e in observer.runtime()["node_states"]:
        if e["id"] == node_id:
            return e
    return None


def wait_node_state(observers, node_id, state, timeout=10.0):
    def check():
        return all((node_state(o, node_id) or {}).get("state") == state for o in observers)
    wait_until(check, timeout, f"nodes {[o.id for o in observers]} to show node {node_id} {state}")


def statuses(hist):
    return [h["status"] for h in hist]


def assert_legal_history(hist, who=""):
    """Each consecutive pair of status_history is a legal move of the contract's table."""
    for a, b in zip(hist, hist[1:]):
        ok = b["status"] == NOT_RESPONSIVE or b["status"] in LEGAL_MOVES.get(a["status"], ())
        assert ok, (f"{who} status_history has an illegal move {a['status']!r} -> "
                    f"{b['status']!r}: {statuses(hist)}")


def recovery_after(hist, since_index):
    """The part of HIST from the last 'Not Responsive' at or after since_index."""
    tail = hist[since_index:]
    last_nr = max((i for i, h in enumerate(tail) if h["status"] == NOT_RESPONSIVE), default=None)
    assert last_nr is not None, f"no 'Not Responsive' in status_history after index " \
                                f"{since_index}: {statuses(hist)}"
    return tail[last_nr:]


def assert_recovery_order(hist, errors_expected=None, who=""):
    """HIST (from a 'Not Responsive') runs Not Responsive, [Errors], Restoring, Waiting for
    Service Engines, Cluster copying DB from leader, Ready, in that order, nothing else."""
    got = statuses(hist)
    core = [s for s in got if s != ERRORS]
    assert core[:5] == [NOT_RESPONSIVE, RESTORING, WAITING, COPYING, READY], \
        f"{who} status_history after the reboot: {got}"
    if errors_expected is True:
        assert got[1] == ERRORS, f"{who} expected Errors right after Not Responsive: {got}"
    if errors_expected is False:
        assert ERRORS not in got[:6], f"{who} unexpected Errors: {hist}"
    return hist


# ---------------------------------------------------------------------------
# events

def events(node, event_id=None, page_size=1000):
    """Every event (oldest first) from node's own replica, following pages."""
    out = []
    for page in itertools.count(1):
        params = {"page": page, "page_size": page_size}
        if event_id:
            params["event_id"] = event_id
        status, doc = node.api.get("/api/event", params=params)
        if status != 200:
            raise HarnessError(f"{node.label} GET /api/event: {status} {doc}")
        out.extend(doc["results"])
        if not doc["results"] or len(out) >= doc["count"]:
            return out


def events_of(evs, event_id, since_ms=0, **details):
    """Events of one id, at or after since_ms, whose event_details match every given field."""
    out = []
    for e in evs:
        if e["event_id"] != event_id:
            continue
        if parse_time_ms(e["report_timestamp"]) < since_ms:
            continue
        d = e.get("event_details") or {}
        if all(d.get(k) == v for k, v in details.items()):
            out.append(e)
    return out


def parse_time_ms(text):
    from datetime import datetime
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
               .replace(tzinfo=__import__("datetime").timezone.utc).timestamp() * 1000)


def wait_events(node, cond, timeout=10.0, what="events"):
    """Poll node's event list until cond(list) is truthy; returns the list."""
    def check():
        evs = events(node)
        return evs if cond(evs) else None
    return wait_until(check, timeout, what, interval=0.1)


def wait_same_events(nodes, timeout=10.0):
    """Wait until every node's event list is identical; returns it."""
    def check():
        lists = [events(n) for n in nodes]
        return lists[0] if all(lst == lists[0] for lst in lists[1:]) else None
    return wait_until(check, timeout, f"identical event lists on nodes {[n.id for n in nodes]}",
                      interval=0.2)


# ---------------------------------------------------------------------------
# objects

def all_objects(node):
    """{type: {uuid: object}} of every object on node's own replica (plain reads)."""
    return {t: {o["uuid"]: o for o in node.api.list_all(t)} for t in OBJECT_TYPES}


def describe_difference(a, b, la="a", lb="b"):
    for t in OBJECT_TYPES:
        only_a = set(a[t]) - set(b[t])
        only_b = set(b[t]) - set(a[t])
        if only_a or only_b:
            return (f"{t}: {len(only_a)} only on {la} (e.g. {sorted(only_a)[:3]}), "
                    f"{len(only_b)} only on {lb} (e.g. {sorted(only_b)[:3]})")
        for uid in a[t]:
            if a[t][uid] != b[t][uid]:
                fa, fb = a[t][uid], b[t][uid]
                keys = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
                return f"{t} {uid}: fields {keys} differ between {la} and {lb}"
    return None


def wait_identical(nodes, timeout=20.0):
    """Wait until every node holds exactly the same objects, field by field, then assert it
    once more on fresh full lists. Returns the objects."""
    last = {}

    def check():
        views = [all_objects(n) for n in nodes]
        for n, v in zip(nodes[1:], views[1:]):
            diff = describe_difference(views[0], v, nodes[0].label, n.label)
            if diff:
                last["diff"] = diff
                return None
        return views[0]
    try:
        ref = wait_until(check, timeout, f"nodes {[n.id for n in nodes]} to hold the same objects")
    except HarnessError as exc:
        raise HarnessError(f"{exc}; last difference: {last.get('diff')}") from None
    for n in nodes[1:]:
        diff = describe_difference(ref, all_objects(n), nodes[0].label, n.label)
        assert diff is None, diff
    return ref


def hm_name_set(node):
    return {o["name"]: o["uuid"] for o in node.api.list_all("healthmonitor")}


def se_connected(api, se_uuid, controller_node, time_ms=None, connected=True):
    """Record an SE runtime change through the replicated store (the SE-wait mechanism)."""
    body = {"op": "se_runtime", "uuid": se_uuid, "connected": connected,
            "controller_node": controller_node, "time": time_ms or now_ms()}
    status, doc = api.post("/api/internal/command", body)
    assert status in (200, 201, 204), f"se_runtime record: {status} {doc}"
    return doc


# ---------------------------------------------------------------------------
# background clients

class Writer(threading.Thread):
    """Creates healthmonitors one after another (per thread) through `targets`, moving to
    the next target after a failure. Records acked {name: uuid}, failed {name: reason},
    not_applied (names answered 503 not_applied) and the time of every ack."""

    def __init__(self, targets, prefix="w", interval=0.0, threads=1, body=None):
        super().__init__(daemon=True)
        self.targets = list(targets)
        self.prefix = prefix
        self.interval = interval
        self.n_threads = threads
        self.body = body or harness.healthmonitor_body
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}
        self.ack_times = []       # (monotonic, node id)
        self.failed = {}
        self.not_applied = set()
        self.fail_times = []      # (monotonic, node id, reason)
        self._counter = itertools.count()
        self._errors = []

    def _one_thread(self, tno):
        idx = tno
        while not self.stop_event.is_set():
            node = self.targets[idx % len(self.targets)]
            name = f"{self.prefix}-{next(self._counter)}"
            try:
                status, doc = node.api.post("/api/healthmonitor", self.body(name),
                                            timeout=(1.0, 10.0))
                err = None if status == 201 and doc and doc.get("uuid") else f"{status} {doc}"
            except Exception as exc:  # noqa: BLE001 - an unacknowledged write
                status, doc, err = None, None, repr(exc)
            with self.lock:
                if err is None:
                    self.acked[name] = doc["uuid"]
                    self.ack_times.append((time.monotonic(), node.id))
                else:
                    self.failed[name] = err
                    self.fail_times.append((time.monotonic(), node.id, err))
                    if status == 503 and doc and doc.get("outcome") == "not_applied":
                        self.not_applied.add(name)
            if err is not None:
                idx += 1   # try another node next
            if self.interval:
                self.stop_event.wait(self.interval)

    def run(self):
        threads = [threading.Thread(target=self._one_thread, args=(i,), daemon=True)
                   for i in range(self.n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def acks_after(self, t0):
        with self.lock:
            return sum(1 for t, _ in self.ack_times if t >= t0)

    def finish(self, timeout=30.0):
        self.stop_event.set()
        self.join(timeout)
        assert not self.is_alive(), "writer thread did not stop"
        return self


class Poller(threading.Thread):
    """Every `interval` s, one read (GET a list) and one write (POST a healthmonitor)
    on each of `targets`; records every failure with its time."""

    def __init__(self, targets, interval=0.05, prefix="poll"):
        super().__init__(daemon=True)
        self.targets = list(targets)
        self.interval = interval
        self.prefix = prefix
        self.stop_event = threading.Event()
        self.failures = []
        self.reads = 0
        self.acked = {}
        self._n = 0

    def run(self):
        while not self.stop_event.is_set():
            for node in self.targets:
                try:
                    status, doc = node.api.get("/api/healthmonitor",
                                               params={"page_size": 1}, timeout=(1.0, 5.0))
                    if status != 200:
                        self.failures.append((time.time(), node.label, "GET", status, doc))
                    else:
                        self.reads += 1
                except Exception as exc:  # noqa: BLE001 - recorded
                    self.failures.append((time.time(), node.label, "GET", None, repr(exc)))
                self._n += 1
                name = f"{self.prefix}-{self._n}"
                try:
                    status, doc = node.api.post("/api/healthmonitor",
                                                harness.healthmonitor_body(name),
                                                timeout=(1.0, 5.0))
                    if status != 201:
                        self.failures.append((time.time(), node.label, "POST", status, doc))
                    else:
                        self.acked[name] = doc["uuid"]
                except Exception as exc:  # noqa: BLE001 - recorded
                    self.failures.append((time.time(), node.label, "POST", None, repr(exc)))
            self.stop_event.wait(self.interval)

    def finish(self, timeout=30.0):
        self.stop_event.set()
        self.join(timeout)
        assert not self.is_alive(), "poller thread did not stop"
        return self
