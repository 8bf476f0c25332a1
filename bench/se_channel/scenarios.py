#!/usr/bin/python3
"""The seed's reboot scenarios at the benchmark load (issue 12): requests served and failed
through a real vigil-se while its 3-node vigild cluster goes through each scenario.

One SE (registered with its own key, driven by the cluster) serves a virtual service on
two nginx backends; wrk drives it at the data plane benchmark's load (keep-alive, -c64,
one thread) for a fixed window per scenario, and the scenario runs inside that window:

- follower: a follower is killed (-9) and started again;
- leader: the leader is killed and started again;
- both followers: both followers killed, started again;
- all three: every node killed, the SE goes HEADLESS, all started again.

Each row gives wrk's requests, the failed ones (non-2xx answers and socket errors: connect,
read, write, timeout), the SE states seen (its /status polled every 100 ms) and the time
until the SE was CONNECTED to all three nodes again after the restart.

    bench/se_channel/run.sh --scenarios [--window 14] [--connections 64]

Loopback only (127.0.0.0/8); every process is stopped by its PID."""
import argparse
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load_se_channel_bench():
    """bench/se_channel/bench.py under its own name (it imports bench/controller/bench.py
    as "bench" itself)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("se_channel_bench", HERE / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sb = _load_se_channel_bench()  # setup, BenchSE, all_connected
ctl, cl = sb.ctl, sb.cl


def nginx_backends(tmp, ports):
    """Two nginx backends (100-byte bodies) on PORTS; returns the process."""
    body = "x" * 99
    conf = tmp / "backend.conf"
    listens = " ".join(f"listen 127.0.0.1:{p} reuseport;" for p in ports)
    conf.write_text(f"""worker_processes 1;
daemon off;
pid {tmp}/backend.pid;
error_log {tmp}/backend-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{ {listens} location / {{ return 200 "{body}\\n"; }} }}
}}
""")
    proc = ctl.spawn(["nginx", "-c", conf, "-p", tmp], tmp / "backend.log")
    for p in ports:
        ctl.wait_for(lambda p=p: port_open(p), 10, f"nginx on {p}")
    return proc


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def connected_sessions(se):
    return len([c for c in se.status()["controllers"] if c["connected"]])


class StateWatch(threading.Thread):
    """Polls the SE's /status every 100 ms: the states seen, in order, without repeats."""

    def __init__(self, se):
        super().__init__(daemon=True)
        self.se, self.seen, self.stopping = se, [], threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                state = self.se.status()["state"]
            except Exception:  # noqa: BLE001 - the admin port busy: try again
                state = None
            if state and (not self.seen or self.seen[-1] != state):
                self.seen.append(state)
            self.stopping.wait(0.1)

    def stop(self):
        self.stopping.set()
        self.join(timeout=5)


def wrk_start(url, connections, seconds):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s", url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(proc, seconds):
    out, _ = proc.communicate(timeout=seconds + 30)
    m = re.search(r"(\d+) requests in", out)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out[-1500:]}")
    failed = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed += int(non2xx.group(1)) if non2xx else 0
    return int(m.group(1)), failed


def scenario_nodes(cluster, name):
    leader = cluster.wait_stable(60)
    followers = [n for n in cluster.nodes if n is not leader]
    return {"follower": [followers[0]], "leader": [leader], "both followers": followers,
            "all three": list(cluster.nodes)}[name]


def run_scenario(cluster, se, name, url, connections, window):
    """One scenario inside one wrk window; returns its row."""
    nodes = scenario_nodes(cluster, name)
    watch = StateWatch(se)
    watch.start()
    load = wrk_start(url, connections, window)
    try:
        time.sleep(2)  # the load runs before the scenario starts: wrk's window is fixed
        for node in nodes:
            node.kill9()
        if name == "all three":
            ctl.wait_for(lambda: se.status()["state"] == "HEADLESS", window,
                         "the SE HEADLESS with every node down")
        else:
            ctl.wait_for(lambda: connected_sessions(se) == 3 - len(nodes), 10,
                         "the SE to see the nodes gone")
        started = time.monotonic()
        for node in nodes:
            node.start()
        ctl.wait_for(sb.all_connected([se]), window, "the SE CONNECTED to all three again")
        back_ms = (time.monotonic() - started) * 1000.0
    finally:
        served, failed = wrk_result(load, window)
        watch.stop()
    cluster.wait_stable(60)
    return {"scenario": name, "served": served, "failed": failed, "states": watch.seen,
            "back_ms": back_ms}


def render(rows, connections, window):
    out = [f"one SE at wrk -t1 -c{connections} keep-alive, {window} s window per scenario "
           "(the scenario starts 2 s in; every node killed with -9 and started again)",
           "| scenario | requests served | failed | SE states seen | SE on all 3 nodes again |",
           "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['scenario']} | {r['served']} | {r['failed']} | "
                   f"{' -> '.join(r['states'])} | {r['back_ms']:.0f} ms after the start |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=int, default=14, help="seconds of load per scenario")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--only", default="follower,leader,both followers,all three")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-se-scenarios-"))
    try:
        cluster, leader, pool, backend_port, ses = sb.setup(tmp, 1)
        nginx_backends(tmp, [backend_port])
        se = ses[0]
        se.start()
        ctl.wait_for(sb.all_connected(ses), 60, "the SE CONNECTED to 3 nodes")
        url = f"http://{se.vs_address}/"
        ctl.wait_for(lambda: http_ok(url), 20, f"{url} served")
        rows = [run_scenario(cluster, se, name, url, args.connections, args.window)
                for name in args.only.split(",")]
    except Exception:
        print(f"bench/se_channel: logs kept in {tmp}", file=sys.stderr)
        raise
    finally:
        ctl.stop_all()
    print("== SE channel: requests through the SE during the seed's scenarios ==")
    print(render(rows, args.connections, args.window))
    subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        ctl.stop_all()
        print(f"bench/se_channel scenarios: {exc}", file=sys.stderr)
        sys.exit(1)
