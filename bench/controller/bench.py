#!/usr/bin/python3
"""Controller write benchmark: vigild (one node) vs a one-member etcd 3.4, same client (wrk).

Acknowledged writes/s and p50/p99 latency at concurrency 1 and 64, a fixed duration each:
  vigild: POST /api/healthmonitor with a unique name per request (201 = acknowledged)
  etcd:   POST /v3/kv/put through its JSON gateway, base64 key/value (200 = acknowledged)
Every process runs on 127.0.0.1 in a temporary dir and is stopped by its PID.
vigild runs over plain HTTP (--no-tls) with a first admin from --admin-password-file; the
benchmark takes a bearer token (POST /api/token with HTTP Basic) and sends it with every
request (wrk: post.lua's optional 4th argument), so no request pays for Argon2.

usage: bench.py [--duration S] [--update-docs]
"""

import argparse
import base64
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VIGILD = Path(os.environ.get("VIGILD", REPO / "build" / "src" / "controller" / "vigild"))
LUA = HERE / "post.lua"
DOCS = REPO / "docs" / "benchmarks.md"
CONCURRENCY = (1, 64)
# Extra vigild flags for experiments (e.g. VIGILD_FLAGS="--snapshot-threshold 10000000").
EXTRA_VIGILD_FLAGS = os.environ.get("VIGILD_FLAGS", "").split()

started = []   # Popen objects, stopped by PID in stop_all()
LOADS = []     # 1-minute load averages before and after each wrk row (the machine is shared)


def free_port():
    for _ in range(1000):
        port = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def auth_headers(token=None, basic=None):
    """Authorization for vigild: a bearer TOKEN, or HTTP Basic (user, password)."""
    if token is not None:
        return {"Authorization": f"Bearer {token}"}
    if basic is not None:
        cred = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        return {"Authorization": f"Basic {cred}"}
    return {}


def http_json(method, url, body=None, timeout=5, token=None, basic=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **auth_headers(token, basic)}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def admin_password_file(tmp):
    """A random first-admin password in TMP/admin-password (0600); returns (path, password)."""
    password = secrets.token_urlsafe(18)
    path = tmp / "admin-password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return path, password


def vigild_auth_flags(password_path):
    """Plain HTTP on loopback, the first admin "admin" with the password in PASSWORD_PATH."""
    return ["--no-tls", "--admin-password-file", password_path]


def get_token(base, password, timeout=30):
    """A bearer token for admin (POST /api/token with HTTP Basic, valid one day); retried
    until the node answers (it may not have a leader or the admin user yet)."""
    found = {}

    def take():
        st, doc = http_json("POST", base + "/api/token",
                            {"description": "bench", "expires_in": 86400}, basic=("admin", password))
        if st in (200, 201) and doc and doc.get("token"):
            found["token"] = doc["token"]
            return True
        return False
    wait_for(take, timeout, f"a token from {base}")
    return found["token"]


def spawn(argv, log):
    proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    started.append(proc)
    return proc


def stop(proc, deadline=10):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def stop_all(deadline=20):
    """SIGTERM to every process started, then a wait for all of them together (DEADLINE
    s); SIGKILL to any still running (each by its PID)."""
    for proc in started:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    end = time.monotonic() + deadline
    for proc in started:
        try:
            proc.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def wrk(url, path, kind, prefix, connections, duration, token=None):
    """One wrk row; TOKEN (vigild) is sent as "Authorization: Bearer TOKEN"."""
    threads = 1 if connections == 1 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
           "-s", str(LUA), url, "--", path, kind, prefix]
    if token is not None:
        cmd.append(f"Bearer {token}")
    load_before = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    LOADS.extend([load_before, os.getloadavg()[0]])
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not line:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    r = dict(kv.split("=") for kv in line[0].split()[1:])
    r = {k: float(v) for k, v in r.items()}
    r["writes_per_s"] = r["ok"] / (r["duration_us"] / 1e6)
    shown = [re.sub(r":\d+$", ":PORT", a) if a == url else a for a in cmd]
    shown[shown.index("-s") + 1] = "bench/controller/post.lua"
    if token is not None:
        shown[-1] = "'Bearer TOKEN'"
    r["cmd"] = " ".join(shown)
    return r


def bench_vigild(tmp, duration):
    if not VIGILD.exists():
        raise RuntimeError(f"{VIGILD} not built (run `make`)")
    raft, api, se = free_port(), free_port(), free_port()
    data = tmp / "vigil"
    data.mkdir()
    pw_path, password = admin_password_file(tmp)
    argv = [VIGILD, "--data-dir", data, "--id", "1", "--raft", f"127.0.0.1:{raft}",
            "--api", f"127.0.0.1:{api}", "--se-listen", f"127.0.0.1:{se}", "--name", "node-1",
            *vigild_auth_flags(pw_path), *EXTRA_VIGILD_FLAGS]
    proc = spawn(argv, tmp / "vigild.log")
    base = f"http://127.0.0.1:{api}"
    try:
        token = get_token(base, password)
        wait_for(lambda: http_json("GET", base + "/api/cluster/runtime",
                                   token=token)[1].get("leader_id") == 1,
                 30, "vigild to lead")
        results = {}
        for c in CONCURRENCY:
            results[c] = wrk(base, "/api/healthmonitor", "vigil", f"bench-c{c}", c, duration,
                             token=token)
        # sanity: every acknowledged write is stored
        status, doc = http_json("GET", base + "/api/healthmonitor?page_size=1", token=token)
        acked = sum(r["ok"] for r in results.values())
        if doc["count"] < acked:
            raise RuntimeError(f"vigild stores {doc['count']} objects but acknowledged {acked:.0f}")
        extra = " ".join(EXTRA_VIGILD_FLAGS)
        return results, ("vigild --data-dir D --id 1 --raft .. --api .. --se-listen .. --name node-1 "
                         "--no-tls --admin-password-file F" + (f" {extra}" if extra else ""))
    finally:
        stop(proc)


def bench_etcd(tmp, duration):
    etcd = shutil.which("etcd")
    if not etcd:
        raise RuntimeError("etcd not installed (Debian etcd-server; `make deps`)")
    client, peer = free_port(), free_port()
    cu, pu = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    argv = [etcd, "--name", "bench", "--data-dir", tmp / "etcd",
            "--listen-client-urls", cu, "--advertise-client-urls", cu,
            "--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
            "--initial-cluster", f"bench={pu}", "--initial-cluster-state", "new",
            "--log-level", "warn"]
    proc = spawn(argv, tmp / "etcd.log")
    try:
        wait_for(lambda: http_json("GET", cu + "/health")[1].get("health") == "true", 30, "etcd health")
        results = {}
        for c in CONCURRENCY:
            results[c] = wrk(cu, "/v3/kv/put", "etcd", f"bench-c{c}", c, duration)
        # sanity: every acknowledged put made its own key
        import base64
        b64 = lambda t: base64.b64encode(t.encode()).decode()
        status, doc = http_json("POST", cu + "/v3/kv/range",
                                {"key": b64("bench-"), "range_end": b64("bench."), "count_only": True})
        acked = sum(r["ok"] for r in results.values())
        if int(doc.get("count", 0)) < acked:
            raise RuntimeError(f"etcd holds {doc.get('count')} keys but acknowledged {acked:.0f}")
        return results, ("etcd --name bench --data-dir D --listen-client-urls URL "
                         "--advertise-client-urls URL --listen-peer-urls URL2 "
                         "--initial-advertise-peer-urls URL2 --initial-cluster bench=URL2")
    finally:
        stop(proc)


def fmt_row(system, c, r):
    return (f"| {system} | {c} | {r['writes_per_s']:.0f} | {r['p50_us'] / 1000:.2f} | "
            f"{r['p99_us'] / 1000:.2f} | {r['bad']:.0f} |")


def render(vigil, etcd, duration, vcmd, ecmd):
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = [
        f"Run on {time.strftime('%Y-%m-%d', time.gmtime())}, commit {commit}, "
        f"{os.cpu_count()} CPUs ({platform.machine()}, Linux {platform.release()}), "
        f"{duration} s per row, everything on 127.0.0.1, client and servers sharing the CPUs "
        f"({load_note()}).",
        "",
        "| system | concurrency | acknowledged writes/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for c in CONCURRENCY:
        lines.append(fmt_row("vigild (1 node)", c, vigil[c]))
        lines.append(fmt_row("etcd 3.4 (1 member)", c, etcd[c]))
    lines += ["", "| concurrency | vigild / etcd writes/s | vigild / etcd p50 | vigild / etcd p99 |",
              "|---|---|---|---|"]
    for c in CONCURRENCY:
        v, e = vigil[c], etcd[c]
        lines.append(f"| {c} | {ratio(v['writes_per_s'], e['writes_per_s'])} | "
                     f"{ratio(v['p50_us'], e['p50_us'])} | {ratio(v['p99_us'], e['p99_us'])} |")
    lines += ["", "Commands (`make bench` runs `bench/run.sh`, which runs `bench/controller/run.sh`):",
              "", "```", f"# servers, each alone in turn:", vcmd, ecmd, "# client, per row:"]
    for c in CONCURRENCY:
        lines.append(vigil[c]["cmd"])
        lines.append(etcd[c]["cmd"])
    lines += ["```", "",
              "A write is acknowledged when vigild answers 201 (committed by raft, fsync'd, applied) "
              "or etcd answers 200. Names are unique per request (`bench/controller/post.lua`); "
              "etcd stores the same JSON document as the value. After the vigild rows the "
              "benchmark checks that the stored count covers every acknowledged write (and the same for "
              "etcd's keys). vigild serves plain HTTP (`--no-tls`) with its first admin from "
              "`--admin-password-file`; the benchmark takes a bearer token once (`POST /api/token` "
              "with HTTP Basic) and wrk sends `Authorization: Bearer TOKEN` with every request "
              "(post.lua's 4th argument; checking a token is a keyed hash, no Argon2). "
              "The machine is shared with other work: expect about 2x between runs."]
    return "\n".join(lines)


def load_note():
    """The machine's load while the rows ran, for the report."""
    if not LOADS:
        return "load not measured"
    return f"1-minute load average {min(LOADS):.1f}-{max(LOADS):.1f} while the rows ran"


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


def update_docs(section_body):
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    header = "## Controller"
    new_section = f"{header}\n\n{section_body}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == header), None)
    if start is None:
        if not text.endswith("\n"):
            text += "\n"
        DOCS.write_text(text + "\n" + new_section)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    DOCS.write_text("".join(lines[:start]) + new_section + ("\n" + tail if tail else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 10)))
    ap.add_argument("--update-docs", action="store_true",
                    help="rewrite the '## Controller' section of docs/benchmarks.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    try:
        vigil, vcmd = bench_vigild(tmp, args.duration)
        etcd, ecmd = bench_etcd(tmp, args.duration)
    except Exception:
        print(f"bench/controller: logs kept in {tmp}", file=sys.stderr)
        raise
    finally:
        stop_all()
    report = render(vigil, etcd, args.duration, vcmd, ecmd)
    print("== controller: acknowledged writes through the REST API vs etcd JSON gateway ==")
    print(report)
    if args.update_docs:
        update_docs(report)
        print(f"(updated {DOCS.relative_to(REPO)})")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        stop_all()
        print(f"bench/controller: {exc}", file=sys.stderr)
        sys.exit(1)
