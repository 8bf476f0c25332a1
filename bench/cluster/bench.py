#!/usr/bin/python3
"""Cluster benchmark (issue 3): three vigild nodes on 127.0.0.1, default timings.

  failover   kill -9 the leader N times under a light write load; time from the kill to
             the first acknowledged write through a survivor (min / median / max)
  writes     acknowledged writes/s at concurrency 1 and 64 through the REST API on the
             3-node cluster, and etcd 3.4 with 3 members through its JSON gateway, same
             client (wrk + bench/controller/post.lua), in the same run; ratio printed.
             --rounds N (default 3) alternates a vigild and an etcd measurement N times
             and reports the median round and every round's paired ratio
  rejoin     a restarted follower's time to caught-up with 100 and 100,000 objects
  heavy      S seconds of heavy write load (wrk, 64 connections); leader changes counted

Every process runs in a temporary dir and is stopped by its PID (also on failure).
Each cluster serves plain HTTP (--no-tls) with a first admin from --admin-password-file;
the benchmark takes one bearer token per cluster (POST /api/token with HTTP Basic, replicated
to every node) and sends it with every request, Python's and wrk's alike.
usage: bench.py [--duration S] [--rounds N] [--failovers N] [--heavy S] [--rejoin 100,100000]
                [--only failover,writes,rejoin,heavy] [--update-docs]
"""

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "controller"))
import bench as ctl  # noqa: E402  (bench/controller/bench.py: wrk(), free_port(), spawn/stop)

VIGILD = ctl.VIGILD
DOCS = REPO / "docs" / "benchmarks.md"
ELECTION_TIMEOUT_S = 0.3
DOWN_S = 3 * ELECTION_TIMEOUT_S + 0.1


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def http(method, url, body=None, timeout=5, token=None):
    """(status, json) also for 4xx/5xx answers; raises on connection errors. TOKEN (vigild)
    goes in "Authorization: Bearer"."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **ctl.auth_headers(token)}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None


def hm(name):
    return {"name": name, "type": "HEALTH_MONITOR_TCP", "send_interval": 5,
            "receive_timeout": 4, "successful_checks": 2, "failed_checks": 2}


# ---------------------------------------------------------------------------
# a 3-node vigild cluster

class VNode:
    # argv put before vigild's (class-wide), e.g. ["chrt", "-f", "1"] (the SE scale bench's
    # --controllers-rt); the tool execs vigild, so the PID is vigild's
    prefix = []

    def __init__(self, tmp, node_id, raft_port, cluster, extra, owner):
        self.id = node_id
        self.owner = owner    # the VCluster (its token)
        self.api = f"127.0.0.1:{ctl.free_port()}"
        self.url = f"http://{self.api}"
        self.data = tmp / f"vigil{node_id}"
        self.log = tmp / f"vigil{node_id}.log"
        self.argv = [VIGILD, "--data-dir", self.data, "--id", str(node_id),
                     "--raft", f"127.0.0.1:{raft_port}", "--api", self.api,
                     "--se-listen", f"127.0.0.1:{ctl.free_port()}", "--name", f"node-{node_id}",
                     "--cluster", cluster,
                     *ctl.vigild_auth_flags(owner.password_path)] + list(extra)
        self.proc = None

    def start(self):
        self.data.mkdir(parents=True, exist_ok=True)
        self.proc = ctl.spawn(list(self.prefix) + self.argv, self.log)
        return self

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.running:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def term(self):
        ctl.stop(self.proc, deadline=20)

    def runtime(self, timeout=2):
        return http("GET", self.url + "/api/cluster/runtime", timeout=timeout,
                    token=self.owner.token)[1]

    def post(self, path, body, timeout=5):
        return http("POST", self.url + path, body, timeout=timeout, token=self.owner.token)

    def get(self, path, timeout=5):
        return http("GET", self.url + path, timeout=timeout, token=self.owner.token)

    def wrk(self, prefix, connections, duration):
        return ctl.wrk(self.url, "/api/healthmonitor", "vigil", prefix, connections, duration,
                       token=self.owner.token)


class VCluster:
    def __init__(self, tmp, extra=()):
        tmp.mkdir(parents=True, exist_ok=True)
        self.password_path, self.password = ctl.admin_password_file(tmp)
        self.token = None
        extra = list(extra) + ctl.EXTRA_VIGILD_FLAGS
        ports = [ctl.free_port() for _ in range(3)]
        spec = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports))
        self.nodes = [VNode(tmp, i + 1, ports[i], spec, extra, self) for i in range(3)]

    def start(self):
        for n in self.nodes:
            n.start()
        if self.token is None:
            # one token for the cluster's life: it is replicated, so every node (also one
            # restarted later) accepts it once it applied the token's entry
            self.token = ctl.get_token(self.nodes[0].url, self.password, timeout=30)
            for n in self.nodes:
                ctl.wait_for(lambda n=n: n.get("/api/cluster/runtime")[0] == 200, 30,
                             f"node {n.id} to accept the token")
        return self.wait_stable(30)

    def stop(self):
        for n in self.nodes:
            if n.running:
                n.term()

    def wait_stable(self, timeout=30):
        """Leader agreed by every running node, all Ready, every running node ACTIVE."""
        found = {}

        def stable():
            run = [n for n in self.nodes if n.running]
            views = [n.runtime() for n in run]
            leaders = {v["leader_id"] for v in views}
            if len(leaders) != 1 or None in leaders:
                return False
            ids = {n.id for n in run}
            for v in views:
                if v["cluster_state"]["status"] != "Ready":
                    return False
                if any(e["id"] in ids and e["state"] != "CLUSTER_ACTIVE" for e in v["node_states"]):
                    return False
            found["leader"] = self.nodes[leaders.pop() - 1]
            return True
        ctl.wait_for(stable, timeout, "a stable 3-node cluster")
        return found["leader"]

    def leader(self):
        return self.wait_stable()


# ---------------------------------------------------------------------------
# failover

class LightLoad(threading.Thread):
    """One write every `interval` s through the running nodes (round robin)."""

    def __init__(self, cluster, interval=0.02):
        super().__init__(daemon=True)
        self.cluster, self.interval = cluster, interval
        self.stop_event = threading.Event()
        self.ok = self.bad = 0

    def run(self):
        i = 0
        while not self.stop_event.is_set():
            run = [n for n in self.cluster.nodes if n.running]
            i += 1
            try:
                st, _ = run[i % len(run)].post("/api/healthmonitor",
                                               hm(f"light-{i}-{time.monotonic_ns()}"), timeout=3)
                self.ok += st == 201
                self.bad += st != 201
            except Exception:  # noqa: BLE001 - counted
                self.bad += 1
            self.stop_event.wait(self.interval)


def bench_failover(tmp, rounds):
    cluster = VCluster(tmp / "failover")
    cluster.start()
    load = LightLoad(cluster)
    load.start()
    times = []
    try:
        for r in range(rounds):
            leader = cluster.wait_stable(30)
            survivors = [n for n in cluster.nodes if n is not leader]
            leader.kill9()
            t_kill = time.monotonic()
            i = 0
            while True:
                i += 1
                target = survivors[i % 2]
                try:
                    st, _ = target.post("/api/healthmonitor", hm(f"probe-{r}-{i}"), timeout=5)
                except Exception:  # noqa: BLE001 - not yet
                    st = None
                if st == 201:
                    times.append(time.monotonic() - t_kill)
                    break
                if time.monotonic() - t_kill > 30:
                    raise RuntimeError("no acknowledged write 30 s after killing the leader")
            log(f"failover {r + 1}/{rounds}: {times[-1] * 1000:.0f} ms")
            time.sleep(max(0.0, DOWN_S - (time.monotonic() - t_kill)))  # reboot down time
            leader.start()
    finally:
        load.stop_event.set()
        load.join(10)
        cluster.stop()
    return {"times": times, "light_ok": load.ok, "light_bad": load.bad}


# ---------------------------------------------------------------------------
# config writes: 3 vigild vs 3 etcd

def bench_writes_vigil(tmp, duration):
    cluster = VCluster(tmp / "writes")
    try:
        leader = cluster.start()
        follower = [n for n in cluster.nodes if n is not leader][0]
        res = {}
        for c in ctl.CONCURRENCY:
            res[c] = leader.wrk(f"cl-c{c}", c, duration)
            log(f"vigild x3 c={c}: {res[c]['writes_per_s']:.0f}/s")
        res["follower64"] = follower.wrk("clf-c64", 64, duration)
        log(f"vigild x3 via follower c=64: {res['follower64']['writes_per_s']:.0f}/s")
        st, doc = leader.get("/api/healthmonitor?page_size=1")
        acked = sum(r["ok"] for r in res.values())
        if doc["count"] < acked:
            raise RuntimeError(f"vigild stores {doc['count']} objects, acknowledged {acked:.0f}")
        return res
    finally:
        cluster.stop()


def bench_writes_etcd(tmp, duration):
    etcd = shutil.which("etcd")
    if not etcd:
        raise RuntimeError("etcd not installed (Debian etcd-server; `make deps`)")
    clients = [ctl.free_port() for _ in range(3)]
    peers = [ctl.free_port() for _ in range(3)]
    initial = ",".join(f"e{i}=http://127.0.0.1:{peers[i]}" for i in range(3))
    procs = []
    try:
        for i in range(3):
            cu, pu = f"http://127.0.0.1:{clients[i]}", f"http://127.0.0.1:{peers[i]}"
            procs.append(ctl.spawn([etcd, "--name", f"e{i}", "--data-dir", tmp / f"etcd{i}",
                                    "--listen-client-urls", cu, "--advertise-client-urls", cu,
                                    "--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
                                    "--initial-cluster", initial,
                                    "--initial-cluster-state", "new", "--log-level", "warn"],
                                   tmp / f"etcd{i}.log"))
        urls = [f"http://127.0.0.1:{p}" for p in clients]
        for u in urls:
            ctl.wait_for(lambda u=u: http("GET", u + "/health")[1].get("health") == "true", 30,
                         "etcd health")
        leader_url = None

        def find_leader():
            nonlocal leader_url
            for u in urls:
                st, doc = http("POST", u + "/v3/maintenance/status", {})
                if doc and doc.get("leader") and doc["header"]["member_id"] == doc["leader"]:
                    leader_url = u
                    return True
            return False
        ctl.wait_for(find_leader, 30, "an etcd leader")
        res = {}
        for c in ctl.CONCURRENCY:
            res[c] = ctl.wrk(leader_url, "/v3/kv/put", "etcd", f"cl-c{c}", c, duration)
            log(f"etcd x3 c={c}: {res[c]['writes_per_s']:.0f}/s")
        follower_url = next(u for u in urls if u != leader_url)
        res["follower64"] = ctl.wrk(follower_url, "/v3/kv/put", "etcd", "clf-c64", 64, duration)
        log(f"etcd x3 via follower c=64: {res['follower64']['writes_per_s']:.0f}/s")
        return res
    finally:
        for p in procs:
            ctl.stop(p)


# ---------------------------------------------------------------------------
# rejoin

def fill(leader, n):
    """At least n healthmonitors on the cluster (wrk for bulk, plain POSTs for a few)."""
    if n <= 1000:
        for i in range(n):
            st, doc = leader.post("/api/healthmonitor", hm(f"fill-{i}"))
            assert st == 201, (st, doc)
        return n
    rounds = 0
    while True:
        st, doc = leader.get("/api/healthmonitor?page_size=1")
        if doc["count"] >= n:
            return doc["count"]
        rounds += 1
        leader.wrk(f"fill{rounds}", 64, 5)
        if rounds > 200:
            raise RuntimeError("could not fill the cluster")


def bench_rejoin(tmp, sizes):
    out = {}
    for size in sizes:
        cluster = VCluster(tmp / f"rejoin{size}")
        try:
            leader = cluster.start()
            t0 = time.monotonic()
            count = fill(leader, size)
            log(f"rejoin: {count} objects written in {time.monotonic() - t0:.1f}s")
            leader = cluster.wait_stable(60)
            follower = [n for n in cluster.nodes if n is not leader][0]
            follower.term()
            time.sleep(DOWN_S)  # reboot down time
            rt = leader.runtime()
            target = next(e["applied_index"] for e in rt["node_states"] if e["id"] == leader.id)
            t_start = time.monotonic()
            follower.start()
            caught = {}

            def caught_up():
                v = follower.runtime(timeout=5)
                own = next(e for e in v["node_states"] if e["id"] == follower.id)
                if (own["applied_index"] or 0) >= target and v["leader_id"] == leader.id:
                    caught["t"] = time.monotonic() - t_start
                    return True
                return False
            ctl.wait_for(caught_up, 300, f"the restarted follower to apply index {target}")
            # and the leader sees it active and the cluster Ready again
            cluster.wait_stable(120)
            ready = time.monotonic() - t_start
            out[size] = {"objects": count, "caught_up_s": caught["t"], "ready_s": ready,
                         "index": target}
            log(f"rejoin with {count} objects: caught up {caught['t']:.2f}s, Ready {ready:.2f}s")
        finally:
            cluster.stop()
    return out


# ---------------------------------------------------------------------------
# heavy load: leader changes

def bench_heavy(tmp, seconds):
    cluster = VCluster(tmp / "heavy")
    try:
        leader = cluster.start()
        terms, leaders = set(), set()
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                for n in cluster.nodes:
                    try:
                        v = n.runtime(timeout=2)
                        if v["leader_id"] is not None:
                            terms.add(v["term"])
                            leaders.add((v["term"], v["leader_id"]))
                    except Exception:  # noqa: BLE001 - a busy node; the next poll counts
                        pass
                stop.wait(0.1)
        w = threading.Thread(target=watch, daemon=True)
        w.start()
        r0 = leader.runtime()
        res = leader.wrk("heavy", 64, seconds)
        stop.set()
        w.join(10)
        r1 = leader.runtime()
        changes = r1["term"] - r0["term"]
        log(f"heavy {seconds}s: {res['writes_per_s']:.0f}/s, term {r0['term']} -> {r1['term']}, "
            f"leaders seen {sorted(leaders)}")
        return {"writes_per_s": res["writes_per_s"], "bad": res["bad"], "p99_us": res["p99_us"],
                "term_changes": changes, "leaders_seen": sorted(leaders), "cmd": res["cmd"]}
    finally:
        cluster.stop()


# ---------------------------------------------------------------------------
# report

def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


def median_rounds(rounds):
    """ROUNDS: [(vigild rows, etcd rows)] measured alternately. Returns (vigild rows, etcd
    rows, paired ratios): per row key, the round with the median writes/s (its p50/p99 are
    shown), and per key the vigild/etcd ratio of each round, in round order."""
    keys = list(rounds[0][0].keys())
    wv, we, paired = {}, {}, {}
    for k in keys:
        for side, out in ((0, wv), (1, we)):
            ordered = sorted((r[side][k] for r in rounds), key=lambda x: x["writes_per_s"])
            out[k] = dict(ordered[(len(ordered) - 1) // 2])
            out[k]["all"] = [r[side][k]["writes_per_s"] for r in rounds]
        paired[k] = [r[0][k]["writes_per_s"] / r[1][k]["writes_per_s"]
                     if r[1][k]["writes_per_s"] else 0.0 for r in rounds]
    return wv, we, paired


def render(args, fo, wv, we, rj, hv, paired=None):
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    L = [f"Run on {time.strftime('%Y-%m-%d', time.gmtime())}, commit {commit}, "
         f"{os.cpu_count()} CPUs ({platform.machine()}, Linux {platform.release()}), "
         f"three vigild nodes on 127.0.0.1 with the default timings (--heartbeat-ms 50 "
         f"--election-timeout-ms 300), client and servers sharing the CPUs with other work "
         f"({ctl.load_note()}; expect about 2x between runs). vigild serves plain HTTP "
         f"(`--no-tls`), its first admin from `--admin-password-file`; every request carries "
         f"a bearer token taken once per cluster (`POST /api/token` with HTTP Basic).", ""]
    if fo:
        t = sorted(fo["times"])
        L += ["**Failover** (kill -9 of the leader under a light load of one write per 20 ms; "
              "time from the kill to the first acknowledged write through a survivor):", "",
              "| kills | min ms | median ms | max ms | all (ms) |", "|---|---|---|---|---|",
              f"| {len(t)} | {t[0] * 1000:.0f} | {statistics.median(t) * 1000:.0f} | "
              f"{t[-1] * 1000:.0f} | {', '.join(f'{x * 1000:.0f}' for x in fo['times'])} |", "",
              "Goal: median <= 500 ms (etcd 3.4 here: 1.0-1.2 s, worst 2.8 s).", ""]
    if wv and we:
        n = len(wv[ctl.CONCURRENCY[0]]["all"])
        L += [f"**Config writes** ({args.duration} s per row; acknowledged = vigild 201 / etcd 200; "
              f"to the leader unless noted; {n} rounds, each a fresh vigild cluster then a fresh "
              "etcd cluster, so that both meet the same machine; each row is the round with "
              "the median writes/s):", "",
              "| system | concurrency | acknowledged writes/s | p50 ms | p99 ms | non-2xx |",
              "|---|---|---|---|---|---|"]
        for c in ctl.CONCURRENCY:
            L.append(ctl.fmt_row("vigild (3 nodes)", c, wv[c]))
            L.append(ctl.fmt_row("etcd 3.4 (3 members)", c, we[c]))
        L.append(ctl.fmt_row("vigild (3 nodes), via a follower", 64, wv["follower64"]))
        L.append(ctl.fmt_row("etcd 3.4 (3 members), via a follower", 64, we["follower64"]))
        L += ["", "| concurrency | vigild / etcd writes/s (medians) | per round (paired) | "
              "vigild writes/s per round | etcd writes/s per round |", "|---|---|---|---|---|"]
        for c, label in [(c, str(c)) for c in ctl.CONCURRENCY] + [("follower64", "64 via a follower")]:
            per = ", ".join(f"{x:.2f}x" for x in paired[c])
            L.append(f"| {label} | {ratio(wv[c]['writes_per_s'], we[c]['writes_per_s'])} | {per} | "
                     f"{', '.join(f'{x:.0f}' for x in wv[c]['all'])} | "
                     f"{', '.join(f'{x:.0f}' for x in we[c]['all'])} |")
        L += ["", "Goal: at least 2x etcd at concurrency 64.", ""]
    if rj:
        L += ["**Rejoin** (a follower stopped with SIGTERM, down 1 s, restarted; caught up = its "
              "own applied index reaches the leader's at the restart; Ready = the leader again "
              "reports Ready with every node active):", "",
              "| objects | raft index | caught up s | cluster Ready s |", "|---|---|---|---|"]
        for size, r in rj.items():
            L.append(f"| {r['objects']} | {r['index']} | {r['caught_up_s']:.2f} | {r['ready_s']:.2f} |")
        L.append("")
    if hv:
        L += [f"**Heavy load** ({args.heavy} s of wrk at 64 connections on the leader): "
              f"{hv['writes_per_s']:.0f} acknowledged writes/s, {hv['bad']:.0f} non-2xx, p99 "
              f"{hv['p99_us'] / 1000:.1f} ms; leader changes (term increases): "
              f"**{hv['term_changes']}** (goal: 0); (term, leader) pairs seen: {hv['leaders_seen']}.",
              ""]
    L += ["Commands (`make bench` runs `bench/run.sh`, which runs `bench/cluster/run.sh`):", "",
          "```",
          f"BENCH_DURATION={args.duration} bench/cluster/run.sh --rounds {args.rounds} --failovers {args.failovers} "
          f"--heavy {args.heavy} --rejoin {','.join(map(str, args.rejoin))}",
          "# servers: vigild --data-dir D --id I --raft .. --api .. --se-listen .. --name node-I "
          "--cluster 1@..,2@..,3@.. --no-tls --admin-password-file F"
          + "".join(f" {f}" for f in ctl.EXTRA_VIGILD_FLAGS) + "   (x3)",
          "#          etcd --name eI --data-dir D --listen-client-urls .. --listen-peer-urls .. "
          "--initial-cluster e0=..,e1=..,e2=.. --initial-cluster-state new   (x3)",
          "# client, per row (the same Lua as bench/controller):"]
    if wv and we:
        for c in ctl.CONCURRENCY:
            L += [wv[c]["cmd"], we[c]["cmd"]]
    if hv:
        L.append(hv["cmd"])
    L.append("```")
    return "\n".join(L)


def update_docs(body):
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    header = "## Cluster"
    section = f"{header}\n\n{body}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == header), None)
    if start is None:
        DOCS.write_text(text + ("" if text.endswith("\n") else "\n") + "\n" + section)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    DOCS.write_text("".join(lines[:start]) + section + ("\n" + tail if tail else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 10)))
    ap.add_argument("--failovers", type=int, default=10)
    ap.add_argument("--heavy", type=int, default=60)
    ap.add_argument("--rejoin", type=lambda s: [int(x) for x in s.split(",")],
                    default=[100, 100000])
    ap.add_argument("--only", default="failover,writes,rejoin,heavy")
    ap.add_argument("--rounds", type=int, default=3,
                    help="config-write rounds (vigild then etcd, alternately); medians reported")
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args()
    if not VIGILD.exists():
        raise RuntimeError(f"{VIGILD} not built (run `make`)")
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-cluster-"))
    fo = wv = we = rj = hv = paired = None
    try:
        if "failover" in only:
            fo = bench_failover(tmp, args.failovers)
        if "writes" in only:
            rounds = []
            for i in range(max(1, args.rounds)):
                rtmp = tmp / f"round{i}"
                rtmp.mkdir(parents=True, exist_ok=True)
                rounds.append((bench_writes_vigil(rtmp, args.duration),
                               bench_writes_etcd(rtmp, args.duration)))
            wv, we, paired = median_rounds(rounds)
        if "rejoin" in only:
            rj = bench_rejoin(tmp, args.rejoin)
        if "heavy" in only:
            hv = bench_heavy(tmp, args.heavy)
    except Exception:
        print(f"bench/cluster: logs kept in {tmp}", file=sys.stderr)
        raise
    finally:
        ctl.stop_all()
    report = render(args, fo, wv, we, rj, hv, paired)
    print("== cluster: failover, config writes vs etcd (3 members), rejoin, heavy load ==")
    print(report)
    if args.update_docs:
        update_docs(report)
        print(f"(updated {DOCS.relative_to(REPO)})")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        ctl.stop_all()
        print(f"bench/cluster: {exc}", file=sys.stderr)
        sys.exit(1)
