#!/usr/bin/python3
"""SE scale benchmark (issue 12): for each count N in --counts, N vigil-se processes against
one fresh 3-node vigild cluster on loopback.

- connect: from starting the N SEs to every one CONNECTED with sessions to all 3 nodes;
- rest: --rest seconds with all N connected: each controller's CPU (utime+stime from
  /proc/PID/stat, % of one core) and RSS, the SEs' total CPU and RSS, SEs that left
  CONNECTED (their log's se_state lines) or lost a session in that window;
- storm: all 3 controllers killed (-9), --down seconds down once every SE saw all its
  sessions gone, all 3 started again: from their start to every SE CONNECTED (its state
  CONNECTED and a session open) and to every SE with all 3 sessions again (the SEs' own
  log lines: "-> CONNECTED", "welcome from node I"); SEs not back by --deadline counted;
- health: every controller still running at the end, no "AddressSanitizer", "assert" or
  "Segmentation" in its log; the fd limits of this process, a controller and an SE.

    bench/se_scale/run.sh [--counts 100,250,500,1000] [--rest 25] [--down 5]

SEs get no virtual service (the channel is what is measured); each has its own key,
admin port and data dir. A count that fails is reported with why and the series stops
there. Every process is stopped by its PID (also on failure); all traffic stays on
127.0.0.0/8."""
import argparse
import concurrent.futures
import datetime
import importlib.util
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ch = _load("se_channel_bench", HERE / "bench.py")  # BenchSE, start_cluster, register_se, ...
ctl, cl = ch.ctl, ch.cl
CLK_TCK = os.sysconf("SC_CLK_TCK")
CRASH = re.compile(r"AddressSanitizer|assert|Segmentation", re.I)
POOL = 16  # threads for registration and /status sweeps


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def admin_ports(n, taken=()):
    """N distinct free ports on 127.0.0.1 (ctl.free_port may hand out one twice), from
    10000-19999: below ctl.free_port's range (the cluster's) and below the kernel's
    ephemeral range (net.ipv4.ip_local_port_range), where the SEs' own connections to the
    controllers take theirs (an admin port there was seen taken before its SE bound it)."""
    lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    if lo <= 19999:
        raise RuntimeError(f"the ephemeral port range starts at {lo}: no room for admin ports")
    ports, used = [], set(taken)
    for _ in range(50 * n + 1000):
        if len(ports) == n:
            return ports
        port = random.randint(10000, 19999)
        if port in used:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        used.add(port)
        ports.append(port)
    raise RuntimeError(f"only {len(ports)} of {n} free admin ports")


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def rss_kb(pid):
    try:
        return ch.rss_kb(pid)
    except OSError:
        return 0


def pss_kb(pid):
    """Proportional set size (shared pages split between their users): what N SEs really
    take, where the sum of their RSS counts the shared libraries N times."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


LEADER_LINE = re.compile(r"cluster: role leader, leader \d+, term \d+")


def leader_changes(cluster, until_ms):
    """Elections won in the cluster's logs up to UNTIL_MS (the first one included)."""
    count = 0
    for n in cluster.nodes:
        for ln in n.log.read_text(errors="replace").splitlines():
            if LEADER_LINE.search(ln):
                t = ch.wall_ms_of(ln)
                count += t is not None and t <= until_ms
    return count


def wakeups(pid):
    """Context switches of PID so far (voluntary + involuntary): each is a sleep ended, so
    their rate at rest is the process's wakeups per second."""
    n = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if "ctxt_switches:" in line:
                n += int(line.split()[1])
    except OSError:
        pass
    return n


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def nofile_limit(pid):
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return "/".join(line.split()[3:5])
    return "?"


def sessions(st):
    return len([c for c in st["controllers"] if c["connected"]])


def sweep(pool, ses, pred):
    """The SEs of SES whose /status satisfies PRED (unanswered ones do not)."""
    def one(se):
        try:
            return pred(se.status())
        except Exception:  # noqa: BLE001 - not up, or too busy to answer in time
            return False
    return [se for se, ok in zip(ses, pool.map(one, ses)) if ok]


def wait_all(pool, ses, pred, deadline_s, what, give_up=lambda: False):
    """Waits (at most DEADLINE_S, and while GIVE_UP() is false) until every SE satisfies
    PRED: the ones that did not."""
    pending, end = list(ses), time.monotonic() + deadline_s
    while pending and time.monotonic() < end and not give_up() and \
            any(se.proc.poll() is None for se in pending):
        done = set(id(se) for se in sweep(pool, pending, pred))
        pending = [se for se in pending if id(se) not in done]
        if pending:
            time.sleep(0.2)
    if pending:
        log(f"{len(pending)} of {len(ses)} SEs not {what} within {deadline_s} s")
    return pending


def connected(st):
    return st["state"] == "CONNECTED" and sessions(st) >= 1


def all_three(st):
    return st["state"] == "CONNECTED" and sessions(st) == 3


def stamps_after(se, rx, since_ms):
    out = []
    for ln in se.lines():
        if rx.search(ln):
            t = ch.wall_ms_of(ln)
            if t is not None and t >= since_ms:
                out.append(t)
    return out


TO_CONNECTED = re.compile(r"se_state: \S+ -> CONNECTED")
LEFT_CONNECTED = re.compile(r"se_state: CONNECTED -> ")
SESSION_DROP = re.compile(r"ctl_session \S+: .*connecting again in")
AUTH_REFUSED = re.compile(r"ctl_session \S+: authentication refused")


def back_times(ses, started_ms):
    """Per SE: (s to CONNECTED, s to all 3 welcomes) after STARTED_MS, None if not seen."""
    out = []
    for se in ses:
        conn = stamps_after(se, TO_CONNECTED, started_ms)
        welcomes = [stamps_after(se, re.compile(rf"welcome from node {i}\b"), started_ms)
                    for i in (1, 2, 3)]
        c = (min(conn) - started_ms) / 1000 if conn else None
        a = (max(min(w) for w in welcomes) - started_ms) / 1000 if all(welcomes) else None
        out.append((c, a))
    return out


def controller_health(cluster):
    """[(node id, running?, crash lines in its log)]."""
    out = []
    for n in cluster.nodes:
        text = n.log.read_text(errors="replace") if n.log.exists() else ""
        bad = [ln for ln in text.splitlines() if CRASH.search(ln)][:3]
        if not n.running:
            rc = n.proc.returncode
            bad.append(f"exited: {'signal ' + str(-rc) if rc < 0 else 'status ' + str(rc)}")
        out.append((n.id, n.running, bad))
    return out


def measure_rest(cluster, ses, rest_s):
    pids = [n.proc.pid for n in cluster.nodes]
    se_pids = [se.proc.pid for se in ses if se.proc.poll() is None]
    t0, t0_ms = time.monotonic(), time.time() * 1000
    c0 = [cpu_ticks(p) for p in pids]
    s0 = sum(cpu_ticks(p) for p in se_pids)
    w0 = [wakeups(p) for p in pids], sum(wakeups(p) for p in se_pids)
    time.sleep(rest_s)
    dt = time.monotonic() - t0
    c1 = [cpu_ticks(p) for p in pids]
    s1 = sum(cpu_ticks(p) for p in se_pids)
    w1 = [wakeups(p) for p in pids], sum(wakeups(p) for p in se_pids)
    t1_ms = time.time() * 1000
    left = [se for se in ses if any(t <= t1_ms for t in stamps_after(se, LEFT_CONNECTED, t0_ms))]
    drops = sum(len([t for t in stamps_after(se, SESSION_DROP, t0_ms) if t <= t1_ms])
                for se in ses)
    return {"seconds": dt,
            "ctl": [(n.id, 100.0 * (b - a) / CLK_TCK / dt, rss_kb(n.proc.pid), fd_count(n.proc.pid))
                    for n, a, b in zip(cluster.nodes, c0, c1)],
            "se_cpu_pct": 100.0 * (s1 - s0) / CLK_TCK / dt,
            "ctl_wakeups": [(b - a) / dt for a, b in zip(w0[0], w1[0])],
            "se_wakeups": (w1[1] - w0[1]) / dt / max(1, len(se_pids)),
            "se_rss_kb": sum(rss_kb(p) for p in se_pids),
            "se_pss_kb": sum(pss_kb(p) for p in se_pids),
            "elections": leader_changes(cluster, t1_ms),
            "left_connected": len(left), "session_drops": drops}


def storm(pool, cluster, ses, down_s, deadline_s):
    for n in cluster.nodes:
        n.kill9()
    gone = wait_all(pool, ses, lambda st: sessions(st) == 0, 60, "without sessions")
    if gone:
        raise RuntimeError(f"{len(gone)} SEs still report a session 60 s after killing all 3 nodes")
    time.sleep(down_s)
    started, started_ms = time.monotonic(), time.time() * 1000
    for n in cluster.nodes:
        n.start()
    def node_down():
        return not all(n.running for n in cluster.nodes)
    not_conn = wait_all(pool, ses, connected, deadline_s, "CONNECTED after the restart",
                        node_down)
    t_conn_poll = time.monotonic() - started
    not_all = wait_all(pool, ses, all_three, max(5.0, deadline_s - t_conn_poll),
                       "with all 3 sessions after the restart", node_down)
    t_all_poll = time.monotonic() - started
    times = back_times(ses, started_ms)
    refused = [len(stamps_after(se, AUTH_REFUSED, started_ms)) for se in ses]
    conn = [c for c, _ in times if c is not None]
    allb = [a for _, a in times if a is not None]
    return {"connected_s": max(conn) if conn and not not_conn else None,
            "connected_p50_s": ch.pct(conn, 50) if conn else None,
            "all_s": max(allb) if allb and not not_all else None,
            "all_p50_s": ch.pct(allb, 50) if allb else None,
            "poll_connected_s": t_conn_poll, "poll_all_s": t_all_poll,
            "never_connected": len(not_conn), "never_all": len(not_all),
            "auth_refused": (len([r for r in refused if r]), sum(refused)),
            "ctl_rss_kb": [(n.id, rss_kb(n.proc.pid)) for n in cluster.nodes]}


def run_count(n, tmp, key_dir, args):
    res = {"n": n}
    with concurrent.futures.ThreadPoolExecutor(POOL) as pool:
        cluster, leader, kh, controllers = ch.start_cluster(tmp)
        res["cluster"] = cluster
        ports = admin_ports(n)
        ses = list(pool.map(lambda i: ch.BenchSE(tmp, i, kh, controllers, admin=ports[i - 1],
                                                 key_dir=key_dir), range(1, n + 1)))
        t = time.monotonic()
        list(pool.map(lambda se: ch.register_se(leader, se), ses))
        res["register_s"] = time.monotonic() - t
        log(f"{n} SEs registered in {res['register_s']:.1f} s")
        t = time.monotonic()
        for k, se in enumerate(ses):
            if args.ramp and k and k % args.ramp[0] == 0:
                time.sleep(args.ramp[1])
            se.start()
        res["spawn_s"] = time.monotonic() - t
        missing = wait_all(pool, ses, all_three, args.deadline, "CONNECTED to all 3 nodes")
        res["connect_s"] = time.monotonic() - t
        dead = [se for se in ses if se.proc.poll() is not None]
        res["fd_limits"] = {"bench": "/".join(map(str, resource.getrlimit(resource.RLIMIT_NOFILE))),
                            "vigild": nofile_limit(cluster.nodes[0].proc.pid),
                            "vigil-se": nofile_limit(ses[0].proc.pid)}
        if missing or dead:
            res["failed"] = (f"{len(missing)} of {n} SEs not CONNECTED to all 3 nodes "
                             f"{args.deadline} s after starting them; {len(dead)} SE processes "
                             f"exited")
            res["health"] = controller_health(cluster)
            res["elections"] = leader_changes(cluster, time.time() * 1000)
            return res
        log(f"{n} SEs CONNECTED to all 3 nodes in {res['connect_s']:.1f} s; resting {args.rest} s")
        res["rest"] = measure_rest(cluster, ses, args.rest)
        log(f"storm: kill -9 all 3 nodes, {args.down} s down, start all 3")
        res["storm"] = storm(pool, cluster, ses, args.down, args.deadline)
        time.sleep(2)
        res["health"] = controller_health(cluster)
        res["se_exited"] = len([se for se in ses if se.proc.poll() is not None])
        if res["storm"]["never_all"] or any(not ok or bad for _, ok, bad in res["health"]):
            res["failed"] = "storm: SEs not back, or a controller down or crashed (see below)"
    return res


def fmt(v, spec=".2f", unit=" s"):
    return "-" if v is None else f"{v:{spec}}{unit}"


def render(results, args):
    out = [f"SE scale: N vigil-se against one 3-node vigild cluster on 127.0.0.1; "
           f"{os.cpu_count()} CPUs; SEs at nice +{args.se_nice} over the controllers; "
           f"controllers {'SCHED_FIFO 1' if args.controllers_rt else 'SCHED_OTHER'}; "
           f"rest {args.rest} s; storm: kill -9 all 3, {args.down} s "
           f"down, start all 3", "",
           "| SEs | register | connect (all 3 sessions) | controller CPU % of a core at rest "
           "(node 1/2/3) | controller RSS at rest (MB) | controller fds | SEs' CPU at rest "
           "(sum) | wakeups/s at rest: controller (node 1/2/3) / per SE | SEs' RSS / PSS (sum) | elections up to the storm | left CONNECTED / session drops at rest | storm: all "
           "CONNECTED (p50 / max) | storm: all 3 sessions (p50 / max) | not back | failures |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rest, st = r.get("rest"), r.get("storm")
        row = [str(r["n"]), fmt(r.get("register_s"), ".1f"), fmt(r.get("connect_s"))]
        if rest:
            row += ["/".join(f"{c:.1f}" for _, c, _, _ in rest["ctl"]),
                    "/".join(f"{kb / 1024:.0f}" for _, _, kb, _ in rest["ctl"]),
                    "/".join(str(f) for _, _, _, f in rest["ctl"]),
                    f"{rest['se_cpu_pct']:.0f} %",
                    "/".join(f"{w:.0f}" for w in rest["ctl_wakeups"]) +
                    f" / {rest['se_wakeups']:.1f}",
                    f"{rest['se_rss_kb'] / 1024:.0f} / {rest['se_pss_kb'] / 1024:.0f} MB",
                    str(rest["elections"]),
                    f"{rest['left_connected']} / {rest['session_drops']}"]
        else:
            row += ["-"] * 8
        if st:
            row += [f"{fmt(st['connected_p50_s'])} / {fmt(st['connected_s'])}",
                    f"{fmt(st['all_p50_s'])} / {fmt(st['all_s'])}",
                    f"{st['never_connected']} / {st['never_all']}"]
        else:
            row += ["-"] * 3
        row.append(r.get("failed", "none"))
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    for r in results:
        line = f"{r['n']} SEs: fd limits (soft/hard) {r.get('fd_limits')}"
        if r.get("spawn_s") is not None:
            line += f"; {r['spawn_s']:.1f} s to spawn them"
        if r.get("elections") is not None:
            line += f"; elections won when it failed: {r['elections']}"
        if r.get("storm"):
            st = r["storm"]
            line += (f"; storm seen by /status polling: all CONNECTED {st['poll_connected_s']:.1f} s, "
                     f"all 3 sessions {st['poll_all_s']:.1f} s; SEs refused authentication "
                     f"by a restarted node (its store not caught up) {st['auth_refused'][0]}, "
                     f"refusals {st['auth_refused'][1]}; controller RSS after the storm "
                     + "/".join(f"{kb / 1024:.0f}" for _, kb in st["ctl_rss_kb"]) + " MB")
        if r.get("health"):
            line += "; controllers: " + ", ".join(
                f"node {i} {'running' if ok else 'NOT RUNNING'}" + (f" {bad}" if bad else "")
                for i, ok, bad in r["health"])
            line += f"; SE processes exited: {r.get('se_exited', 0)}"
        out.append(line)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100,250,500,1000")
    ap.add_argument("--rest", type=float, default=25)
    ap.add_argument("--down", type=float, default=5)
    ap.add_argument("--deadline", type=float, default=300,
                    help="s to wait for every SE (connect, and back after the storm)")
    ap.add_argument("--ramp", type=lambda v: (int(v.split("/")[0]), float(v.split("/")[1])),
                    help="B/S: start the SEs B at a time, S seconds apart (default: all at once)")
    ap.add_argument("--controllers-rt", action="store_true",
                    help="run the 3 vigild under SCHED_FIFO priority 1 (chrt -f 1): the SEs, "
                         "stand-ins for remote hosts, can then never take the controllers' CPU "
                         "(CFS weights cannot do that against 1000 processes); the kernel's RT "
                         "throttling still leaves 5 %% to the rest")
    ap.add_argument("--se-nice", type=int, default=0,
                    help="start the SEs under nice -n N (on top of the bench's own nice): on one "
                         "machine they stand in for remote hosts, whose CPU is not the "
                         "controllers'; 0 (the default): the same priority as the controllers")
    ap.add_argument("--keep", action="store_true", help="keep the logs and data dirs")
    args = ap.parse_args()
    if not ch.SE_BIN.exists():
        raise RuntimeError(f"{ch.SE_BIN} not built (run `make`)")
    counts = [int(c) for c in args.counts.split(",")]
    ch.BenchSE.nice = args.se_nice
    if args.controllers_rt:
        cl.VNode.prefix = ["chrt", "-f", "1"]
    # run.sh's timeout (and a kill) ends the bench with SIGTERM: stop every process it
    # started (by PID, in the finally below) rather than leave 1000 SEs running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    base = Path(tempfile.mkdtemp(prefix="vigil-bench-se-scale-"))
    key_dir = base / "keys"
    key_dir.mkdir()
    results = []
    try:
        for n in counts:
            log(f"== {n} SEs ==")
            try:
                r = run_count(n, base / f"n{n}", key_dir, args)
            except Exception as exc:  # noqa: BLE001 - reported, the series stops here
                r = {"n": n, "failed": f"{type(exc).__name__}: {exc}"}
            finally:
                ctl.stop_all()
                ctl.started.clear()
            r.pop("cluster", None)
            results.append(r)
            if "failed" in r:
                log(f"{n} SEs failed: {r['failed']}; logs in {base / f'n{n}'}")
                args.keep = True
                break
            if not args.keep:
                subprocess.run(["rm", "-rf", str(base / f"n{n}")])
    finally:
        ctl.stop_all()
    print("== SE scale: connect, controllers at rest, reconnect storm after a whole-cluster "
          "restart ==")
    print(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(render(results, args))
    if args.keep:
        print(f"logs and data dirs kept in {base}")
    else:
        subprocess.run(["rm", "-rf", str(base)])
    return 1 if any("failed" in r for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        ctl.stop_all()
        print(f"bench/se_scale: {exc}", file=sys.stderr)
        sys.exit(1)
