#!/usr/bin/python3
"""SE channel benchmark (issue 12): N real vigil-se processes against one 3-node vigild
cluster on loopback.

- connect: from starting the N SEs to every one CONNECTED with a session to all 3 nodes;
- push: from an acknowledged API write (a pool change every SE serves) to each SE applying
  that config_version (the SE's own log line "config_version V applied", its wall-clock
  milliseconds against the write's acknowledgement), over K changes;
- reconnect: a node killed (-9) and started again: from its start to each SE's session to
  it being open again (the SE's "welcome from node I" line), over R rounds.

    bench/se_channel/run.sh [--ses 50] [--changes 20] [--reconnects 3]

Each SE serves its own virtual service (127.0.1.X:PORT, se_refs naming it) on one shared
pool, so one pool change reaches all of them. Every process is stopped by its PID; all
traffic stays on 127.0.0.0/8."""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "bench" / "controller"))
import bench as ctl  # noqa: E402  (bench/controller/bench.py: spawn, stop_all, free_port)


def _load_cluster_bench():
    import importlib.util
    spec = importlib.util.spec_from_file_location("cluster_bench",
                                                  REPO / "bench" / "cluster" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cl = _load_cluster_bench()  # bench/cluster/bench.py: VCluster (3 nodes), http

SE_BIN = Path(os.environ.get("VIGIL_SE_BIN", REPO / "build" / "src" / "se" / "vigil-se"))
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")


def wall_ms_of(line):
    m = STAMP.match(line)
    if m is None:
        return None
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000.0


def status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
        return json.loads(r.read())


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class BenchSE:
    """One vigil-se: its own ed25519 key (in KEY_DIR, default TMP; an existing key is
    reused), admin port (ADMIN, default a free one) and data dir. NICE (class-wide): started
    under `nice -n NICE` when non-zero (the scale bench's --se-nice)."""

    nice = 0

    def __init__(self, tmp, i, known_hosts, controllers, admin=None, key_dir=None):
        self.i = i
        self.name = f"se-{i}"
        self.key = (key_dir or tmp) / f"{self.name}.key"
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)],
                           check=True, stdin=subprocess.DEVNULL)
        self.pub = Path(f"{self.key}.pub").read_text().split()[:2]
        self.admin = admin or ctl.free_port()
        self.log = tmp / f"{self.name}.log"
        self.argv = [SE_BIN, "--name", self.name, "--data-dir", tmp / f"{self.name}-data",
                     "--admin", f"127.0.0.1:{self.admin}", "--controllers", controllers,
                     "--key", self.key, "--known-hosts", known_hosts]
        self.proc = None

    def start(self):
        argv = (["nice", "-n", str(self.nice)] if self.nice else []) + self.argv
        self.proc = ctl.spawn(argv, self.log)  # nice execs: the PID is the SE's

    def status(self):
        return status(self.admin)

    def lines(self):
        return self.log.read_text(errors="replace").splitlines()


def start_cluster(tmp):
    """A 3-node cluster in TMP/cluster, its nodes' SE host keys in TMP/known_hosts:
    (cluster, leader, known_hosts path, the --controllers list)."""
    cluster = cl.VCluster(tmp / "cluster")
    leader = cluster.start()
    st, doc = leader.get("/api/cluster")
    assert st == 200, (st, doc)
    kh = tmp / "known_hosts"
    kh.write_text("".join(f"[{n['se_address'].rsplit(':', 1)[0]}]:{n['se_address'].rsplit(':', 1)[1]} "
                          f"{n['se_host_key']}\n" for n in doc["nodes"]))
    return cluster, leader, kh, ",".join(n["se_address"] for n in doc["nodes"])


def register_se(leader, se):
    """POST /api/serviceengine for SE (its name and public key): the object."""
    st, obj = leader.post("/api/serviceengine", {"name": se.name, "public_key": " ".join(se.pub)})
    assert st == 201, (st, obj)
    return obj


def setup(tmp, n_ses):
    cluster, leader, kh, controllers = start_cluster(tmp)
    backend_port, vs_port = ctl.free_port(), ctl.free_port()
    st, pool = leader.post("/api/pool", {"name": "shared", "lb_algorithm":
                                         "LB_ALGORITHM_ROUND_ROBIN", "servers": [
                                             {"ip": "127.0.0.1", "port": backend_port}]})
    assert st == 201, (st, pool)
    ses = [BenchSE(tmp, i, kh, controllers) for i in range(1, n_ses + 1)]
    for se in ses:
        se.vs_address = f"127.0.1.{se.i % 250 + 1}:{vs_port}"
        obj = register_se(leader, se)
        st, vs = leader.post("/api/virtualservice", {
            "name": f"vs-{se.i}", "enabled": True, "vip": se.vs_address.split(":")[0],
            "services": [{"port": vs_port}], "application": "http",
            "pool_ref": pool["uuid"], "se_refs": [obj["uuid"]]})
        assert st == 201, (st, vs)
    return cluster, leader, pool, backend_port, ses


def all_connected(ses, n_nodes=3):
    def check():
        for se in ses:
            s = se.status()
            if s["state"] != "CONNECTED" or \
                    len([c for c in s["controllers"] if c["connected"]]) < n_nodes:
                return False
        return True
    return check


def bench_connect(ses):
    t0 = time.monotonic()
    for se in ses:
        se.start()
    ctl.wait_for(all_connected(ses), 120, f"{len(ses)} SEs CONNECTED to 3 nodes")
    return time.monotonic() - t0


def bench_push(leader, pool, backend_port, ses, changes):
    """Latencies (ms) from each acknowledged pool change to each SE applying it."""
    latencies = []
    versions = {se.name: se.status()["config_version"] for se in ses}
    for k in range(changes):
        body = {"name": "shared", "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN",
                "servers": [{"ip": "127.0.0.1", "port": backend_port},
                            {"ip": "127.0.0.1", "port": backend_port + 1 + k % 2,
                             "enabled": False}]}
        st, doc = cl.http("PUT", leader.url + "/api/pool/" + pool["uuid"], body,
                          token=leader.owner.token)
        acked = time.time() * 1000.0
        assert st == 200, (st, doc)
        ctl.wait_for(lambda: all(se.status()["config_version"] > versions[se.name]
                                 for se in ses), 30, f"change {k + 1} on every SE")
        for se in ses:
            versions[se.name] = se.status()["config_version"]
            rx = re.compile(rf"config_version {versions[se.name]} applied")
            stamps = [wall_ms_of(ln) for ln in se.lines() if rx.search(ln)]
            stamps = [t for t in stamps if t is not None]
            assert stamps, f"{se.name}: no log line for config_version {versions[se.name]}"
            latencies.append(max(0.0, min(stamps) - acked))
    return latencies


def bench_reconnect(cluster, ses, rounds):
    times = []
    for r in range(rounds):
        node = cluster.nodes[r % 3]
        was_leader = cluster.leader() is node
        before = len(times)
        node.kill9()
        ctl.wait_for(lambda: all(len([c for c in se.status()["controllers"] if c["connected"]])
                                 == 2 for se in ses), 30, f"every SE noticing node {node.id} gone")
        # a machine's reboot outlasts an election: the node comes back to a cluster that
        # has a running leader again (without this wait a killed leader's return was timed
        # with the election in it: it came back ~0.15 s after its death, before the others
        # had noticed, and its SEs waited for the election too)
        running = [n for n in cluster.nodes if n.running]
        ctl.wait_for(lambda: len({n.runtime()["leader_id"] for n in running}
                                 & {n.id for n in running}) == 1 and
                     len({n.runtime()["leader_id"] for n in running}) == 1, 30,
                     f"a leader among the nodes left after node {node.id}'s death")
        started = time.time() * 1000.0
        node.start()
        ctl.wait_for(all_connected(ses), 60, f"every SE back on node {node.id}")
        rx = re.compile(rf"welcome from node {node.id}\b")
        for se in ses:
            stamps = [wall_ms_of(ln) for ln in se.lines() if rx.search(ln)]
            stamps = [s for s in stamps if s is not None and s >= started]
            assert stamps, f"{se.name}: no welcome from node {node.id} after its restart"
            times.append(min(stamps) - started)
        mine = sorted(times[before:])
        print(f"  restart {r + 1}: node {node.id} ({'the leader' if was_leader else 'a follower'}):"
              f" p50 {mine[len(mine) // 2]:.0f} ms, max {mine[-1]:.0f} ms", flush=True)
        cluster.wait_stable(30)
    return times


def render(n, connect_s, push, reconnect, controller_rss_kb):
    out = [f"SEs: {n}; 3 vigild nodes on 127.0.0.1, heartbeats every 1 s",
           f"connect: all {n} SEs CONNECTED to all 3 nodes {connect_s:.2f} s after starting them",
           f"push: {len(push)} samples (SE x change): p50 {pct(push, 50):.1f} ms, "
           f"p99 {pct(push, 99):.1f} ms, max {max(push):.1f} ms (goal: p99 < 100 ms at 50 SEs)",
           f"reconnect: {len(reconnect)} samples (SE x restart): p50 {pct(reconnect, 50):.0f} ms, "
           f"p99 {pct(reconnect, 99):.0f} ms, max {max(reconnect):.0f} ms from the node's start "
           f"(goal: <= 500 ms)",
           f"controller RSS with {n} SEs: " + ", ".join(f"node {i}: {kb / 1024:.1f} MB"
                                                    for i, kb in controller_rss_kb)]
    return "\n".join(out)


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ses", type=int, default=50)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--reconnects", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the logs and data dirs")
    args = ap.parse_args()
    if not SE_BIN.exists():
        raise RuntimeError(f"{SE_BIN} not built (run `make`)")
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-se-channel-"))
    try:
        cluster, leader, pool, backend_port, ses = setup(tmp, args.ses)
        connect_s = bench_connect(ses)
        push = bench_push(leader, pool, backend_port, ses, args.changes)
        rss = [(n.id, rss_kb(n.proc.pid)) for n in cluster.nodes]
        reconnect = bench_reconnect(cluster, ses, args.reconnects)
    except Exception:
        print(f"bench/se_channel: logs kept in {tmp}", file=sys.stderr)
        raise
    finally:
        ctl.stop_all()
    print("== SE channel: connect, config push latency, reconnect after a node's return ==")
    print(render(args.ses, connect_s, push, reconnect, rss))
    if args.keep:
        print(f"logs and data dirs kept in {tmp}")
    else:
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        ctl.stop_all()
        print(f"bench/se_channel: {exc}", file=sys.stderr)
        sys.exit(1)
