"""One fault run: three vigild hosts on the namespace test bed (TLS and authentication on,
vigild's default timings, a cluster IP on eth0), the clients and the monitor (workload.py), the nemesis
(nemesis.py) for SECONDS, then every fault healed, the cluster left to converge, the final
reads on every node and the checkers (checks.py).

    result = run_once(seed, seconds, run_dir)      # a dict; result["anomalies"] a list

The run dir keeps result.json always; on an anomaly (or an error) also the history
(history.jsonl), the schedule and the fault log, the runtime samples, and every node's
log (logs/node-N.stderr). A passing run's data dirs are deleted.
"""

import json
import shutil
import statistics
from pathlib import Path

import checks
import harness
import nemesis as nemesis_module
import testbed
import workload as workload_module
from harness import HarnessError, wait_until

REGISTERS = 3
CONVERGE_TIMEOUT_S = 60.0
RECOVERY_S = 3.0      # clients keep going this long once the healed cluster has a leader


class TlsNsApi(testbed.NsApi):
    """NsApi over HTTPS, verifying the cluster's certificate once NODE holds it (before,
    a node serves nothing but refused connections, so nothing is trusted on them)."""

    def __init__(self, node):
        super().__init__(node.host, f"{node.host.ip}:{testbed.API_PORT}")
        self.node = node
        self.base = f"https://{self.address}"

    def request(self, method, path, body=None, data=None, headers=None, params=None,
                timeout=None):
        if params:
            from urllib.parse import urlencode
            path = path + ("&" if "?" in path else "?") + urlencode(params)
        if isinstance(timeout, tuple):
            timeout = sum(timeout)
        timeout = timeout or harness.CONNECT_TIMEOUT_S + harness.READ_TIMEOUT_S
        ca = self.node.ca_file()
        if ca is None:
            raise ConnectionRefusedError("the node holds no cluster certificate yet")
        client = workload_module.TlsClient(self.address, ca)

        def one():
            return client.request(method, path, body, timeout=timeout)
        return self.host.worker().call(one, timeout=timeout + 10)


class FaultNode(testbed.NetnsNode):
    """A test bed node as users run it: TLS on (the cluster's self-signed certificate),
    authentication on. `incarnation` counts its starts (plain reads are checked per
    process lifetime)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.tls = True
        self.api = TlsNsApi(self)
        self.incarnation = 0

    def start(self, wait=True, timeout=20.0):
        self.incarnation += 1
        return super().start(wait=wait, timeout=timeout)


class FaultCluster(testbed.NetnsCluster):
    def __init__(self, registry, base_dir, hosts, extra_flags=()):
        self.registry = registry
        cluster = ",".join(f"{i + 1}@{h.ip}:{testbed.RAFT_PORT}" for i, h in enumerate(hosts))
        vip = ["--vip", f"{testbed.VIP}/{testbed.PREFIX}", "--vip-dev", "eth0", *extra_flags]
        self.nodes = [FaultNode(registry, i + 1, Path(base_dir) / f"node{i + 1}", h,
                                cluster=cluster, extra_flags=vip) for i, h in enumerate(hosts)]


# ---------------------------------------------------------------------------
# set-up and the end of a run

def make_registers(leader, tag):
    """Creates the registers (pools) through the leader: {key: (uuid, name)}, value 1."""
    out = {}
    for i in range(REGISTERS):
        name = f"reg-{tag}-{i}"
        status, doc = leader.api.post("/api/pool", workload_module.pool_body(name, 1))
        if status != 201:
            raise HarnessError(f"creating register {name}: {status} {doc}")
        out[f"r{i}"] = (doc["uuid"], name)
    return out


def runtime_of(node):
    status, doc = node.api.get("/api/cluster/runtime", timeout=3.0)
    return doc if status == 200 else None


def own_applied(rt):
    return next((s.get("applied_index") for s in rt.get("node_states") or []
                 if s.get("id") == rt.get("node_id")), None)


def wait_one_leader(cluster, timeout=CONVERGE_TIMEOUT_S):
    """Every node running and naming the same leader."""
    def one():
        views = [runtime_of(n) for n in cluster.nodes]
        leaders = {v.get("leader_id") if v else None for v in views}
        return len(leaders) == 1 and None not in leaders
    return wait_until(one, timeout, "every node to name one leader", interval=0.2)


def wait_converged(cluster, timeout=CONVERGE_TIMEOUT_S):
    """Every node running, naming one leader, at one applied index on two polls in a row."""
    last = [None]

    def same():
        views = [runtime_of(n) for n in cluster.nodes]
        if any(v is None for v in views):
            return False
        leaders = {v.get("leader_id") for v in views}
        applied = {own_applied(v) for v in views}
        now = (tuple(leaders), tuple(applied))
        ok = len(leaders) == 1 and None not in leaders and len(applied) == 1
        stable, last[0] = ok and last[0] == now, now
        return stable
    return wait_until(same, timeout, "every node to name one leader at one applied index",
                      interval=0.3)


def list_all(node, path, page_size=1000, max_pages=500):
    out = []
    for page in range(1, max_pages + 1):
        sep = "&" if "?" in path else "?"
        status, doc = node.api.get(f"{path}{sep}page={page}&page_size={page_size}",
                                   timeout=10.0)
        if status != 200:
            raise HarnessError(f"node {node.id} GET {path} page {page}: {status} {doc}")
        out.extend(doc["results"])
        if not doc["results"] or len(out) >= doc["count"]:
            return out
    raise HarnessError(f"node {node.id} GET {path}: more than {max_pages} pages")


def final_state(cluster):
    """({node: {name: uuid}} of the set's pools, {node: [events]}, [duplicated names])."""
    pools, events, twice = {}, {}, []
    for n in cluster.nodes:
        objs = [o for o in list_all(n, "/api/pool") if o["name"].startswith("set-")]
        pools[n.id], dup = checks.count_names(objs)
        twice += [f"node {n.id} lists {name} twice" for name in dup]
    ids = lambda: [[e["uuid"] for e in list_all(n, "/api/event")] for n in cluster.nodes]
    try:   # events the leader records after the heal (rejoins) may still be arriving
        wait_until(lambda: all(x == ids()[0] for x in ids()), 20.0,
                   "the same event log on every node", interval=0.5)
    except HarnessError:
        pass    # check_events names the difference
    for n in cluster.nodes:
        events[n.id] = list_all(n, "/api/event")
    return pools, events, twice


def measure_rejoin(cluster, node, since, now, timeout=20.0):
    """Seconds from SINCE (the heal) until NODE names the majority's leader and that
    leader sees it active; None when that did not happen within TIMEOUT."""
    def back():
        mine = runtime_of(node)
        if not mine or mine.get("leader_id") is None:
            return False
        leader = next(n for n in cluster.nodes if n.id == mine["leader_id"])
        theirs = runtime_of(leader) if leader is not node else mine
        if not theirs or theirs.get("leader_id") != leader.id:
            return False
        states = {s["id"]: s.get("state") for s in theirs.get("node_states") or []}
        return states.get(node.id) == "CLUSTER_ACTIVE"
    try:
        wait_until(back, timeout, f"node {node.id} to rejoin", interval=0.05)
    except HarnessError:
        return None
    return round(now() - since, 3)


# ---------------------------------------------------------------------------
# figures

def first_acks(history, faults):
    """Per fault: seconds from its start, and from its heal, to the first acknowledged
    write (create or PUT) sent after that moment."""
    acks = sorted((op["invoke"], op["complete"]) for op in history
                  if op["f"] in ("create", "write") and op["outcome"] == "ok")
    for f in faults:
        for mark, field in (("start", "first_ack_s"), ("healed", "first_ack_after_heal_s")):
            t = f.get(mark)
            later = [c for i, c in acks if t is not None and i >= t]
            f[field] = round(min(later) - t, 3) if later else None


def availability(history, nem):
    """Share of the writes and consistent reads that succeeded among those sent to a node
    that was in a connected majority when they were sent and when they ended."""
    sent = ok = 0
    for op in history:
        if op["f"] not in ("create", "write", "read"):
            continue
        end = op["complete"] if op["complete"] is not None else op["invoke"] + 6.0
        if op["node"] in nem.connected_at(op["invoke"]) and op["node"] in nem.connected_at(end):
            sent += 1
            ok += op["outcome"] == "ok"
    return round(ok / sent, 4) if sent else None


def summarise(history):
    out = {}
    for op in history:
        k = f"{op['f']}:{op['outcome']}"
        out[k] = out.get(k, 0) + 1
    return out


# ---------------------------------------------------------------------------
# one run

def run_once(seed, seconds, run_dir, clients_per_node=2, kinds=None, extra_flags=()):
    """One run; returns its result dict (also written to RUN_DIR/result.json). KINDS: the
    nemesis's kinds and weights (nemesis.KINDS when None); EXTRA_FLAGS go to every vigild."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    schedule = nemesis_module.make_schedule(seed, seconds, kinds)
    result = {"seed": seed, "seconds": seconds, "schedule": schedule, "anomalies": [],
              "errors": []}
    bed = testbed.Testbed(run_dir)      # raises TestbedUnavailable
    registry = harness.ProcessRegistry(run_dir / "logs")
    bed.registry = registry
    try:
        _run_body(bed, registry, seed, seconds, schedule, run_dir, result, clients_per_node,
                  extra_flags)
    except Exception as exc:  # noqa: BLE001 - a harness error is reported, not raised
        result["errors"].append(f"{type(exc).__name__}: {exc}"[:2000])
    finally:
        try:
            registry.stop_all()
            result["crashes"] = registry.crashes
        finally:
            bed.close()
    if result.get("crashes"):
        result["anomalies"] += [f"crash: {c}" for c in result["crashes"]]
    _keep(run_dir, result)
    return result


def _run_body(bed, registry, seed, seconds, schedule, run_dir, result, clients_per_node,
              extra_flags):
    hosts = [bed.add_host(f"ctl{i + 1}", "controller") for i in range(3)]
    cluster = FaultCluster(registry, run_dir / "data", hosts, extra_flags)
    cluster.start(timeout=60.0)
    leader = cluster.wait_leader(30.0)
    ca = wait_until(lambda: cluster.nodes[0].ca_file(), 30.0, "the cluster certificate")
    tag = f"{seed}"
    registers = make_registers(leader, tag)
    wait_converged(cluster)
    work = workload_module.Workload(cluster.nodes, ca, registers, tag, seed)
    monitor = workload_module.Monitor(work)
    vip = workload_module.VipWatch(work, testbed.VIP)

    def leader_hint():
        for t, node, term, lid in reversed(monitor.samples[-12:]):
            if lid is not None:
                return lid
        return None
    nem = nemesis_module.Nemesis(bed, cluster.nodes, schedule, work.now, work.stop,
                                 leader_hint,
                                 lambda node, since: measure_rejoin(cluster, node, since,
                                                                    work.now))
    monitor.start()
    vip.start()
    work.start(clients_per_node=clients_per_node)
    nem.start()
    nem.join(seconds + 120.0)
    nem.heal_all()
    result["faults"], result["errors"] = nem.faults, result["errors"] + nem.errors
    try:   # the clients go on until every node names one leader, and a moment more
        wait_one_leader(cluster)
        work.stop.wait(RECOVERY_S)
    finally:
        stuck = work.finish()
        monitor.finish()
        vip.finish()
    if stuck:
        result["errors"].append(f"client threads still running: {stuck}")
    wait_converged(cluster)
    pools, events, twice = final_state(cluster)
    history = sorted(work.history, key=lambda op: op["invoke"])
    initial = {k: 1 for k in registers}
    keys = sorted(registers)
    result["anomalies"] += (twice + checks.check_set(history, pools)
                            + checks.check_linearizable(history, keys, initial)
                            + checks.check_plain_reads(history, keys, initial)
                            + checks.check_leaders(monitor.samples)
                            + checks.check_vip(vip.samples, nem.connected_at, monitor.samples)
                            + checks.check_events(events)
                            + [f"unexpected answer: {u}" for u in work.unexpected[:20]])
    first_acks(history, nem.faults)
    result.update(operations=len(history), by_outcome=summarise(history),
                  availability=availability(history, nem), samples=len(monitor.samples),
                  vip_samples=len(vip.samples),
                  vip_held_samples=sum(1 for _, row in vip.samples if any(row.values())),
                  events=len(events[1]))
    result["_history"], result["_final"] = history, (pools, events)
    _write_json(run_dir / "history.jsonl", history, lines=True)
    _write_json(run_dir / "samples.json", monitor.samples)
    _write_json(run_dir / "vip.json", vip.samples)
    _write_json(run_dir / "timeline.json", [(t, sorted(ids)) for t, ids in nem.timeline])


def _write_json(path, data, lines=False):
    with open(path, "w") as f:
        if lines:
            for item in data:
                f.write(json.dumps(item) + "\n")
        else:
            json.dump(data, f, indent=1)


def _keep(run_dir, result):
    """result.json always; the rest only when the run found something."""
    result["passed"] = not result["anomalies"] and not result["errors"]
    _write_json(run_dir / "result.json", {k: v for k, v in result.items() if k[0] != "_"})
    if result["passed"]:
        for name in ("history.jsonl", "samples.json", "vip.json", "timeline.json"):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "data", ignore_errors=True)


def stats(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"n": len(vals), "median": round(statistics.median(vals), 3),
            "worst": round(max(vals), 3)}
