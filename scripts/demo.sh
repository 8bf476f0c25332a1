#!/usr/bin/env bash
# make demo: a 3-node controller cluster, two demo backends and a Service Engine, all on
# 127.0.0.x of this machine, over HTTPS with the cluster's own certificate (the defaults).
# Every process is started and stopped by its PID (files in the run directory).
#
#   scripts/demo.sh start              start everything (a running demo is stopped first)
#   scripts/demo.sh stop               stop everything
#   scripts/demo.sh status             the cluster's status, as node 1 sees it
#   scripts/demo.sh kill N             crash controller N (kill -9)
#   scripts/demo.sh stop-node N        stop controller N (SIGTERM)
#   scripts/demo.sh restart N          start controller N again (kill -9 first if it runs)
#   scripts/demo.sh kill-all           crash all three controllers
#   scripts/demo.sh restart-all        start all three controllers again
#
# VIGIL_DEMO_DIR chooses the run directory (default: demo-run in the repository).
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="${VIGIL_DEMO_DIR:-$top/demo-run}"
bin="$top/build/src"
py=/usr/bin/python3
cluster="1@127.0.0.11:7000,2@127.0.0.12:7000,3@127.0.0.13:7000"
curl_opts=(-fsS --connect-timeout 2 -m 10)

usage() {
  { echo "usage:"; sed -n '6,15p' "$0" | sed 's/^# \{0,1\}//'; } >&2
  exit 2
}

say() { echo "demo: $*" >&2; }

# True while PID runs; a killed process not yet reaped (a zombie) counts as gone.
pid_alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Waits up to 10 s for PID to be gone (kill -9 is delivered, not yet acted on, when kill returns).
wait_gone() {
  for _ in $(seq 100); do pid_alive "$1" || return 0; sleep 0.1; done
  say "process $1 is still running 10 s after it was killed"
  return 1
}

# Stops the process whose PID is in FILE (SIGTERM, then SIGKILL after 5 s), removes FILE.
stop_pidfile() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null && wait_gone "$pid"
  fi
  rm -f "$pidfile"
}

stop() {
  [ -d "$run" ] || return 0
  for pidfile in "$run"/*.pid; do
    stop_pidfile "$pidfile"
  done
}

# A step of `start` failed: one line saying what, then everything it started is stopped.
fail() {
  say "$1 (logs in $run); stopping the demo"
  stop
  exit 1
}

node_running() { [ -f "$run/node$1.pid" ] && pid_alive "$(cat "$run/node$1.pid")"; }

start_node() { # N
  local i=$1
  node_running "$i" && { say "controller $i is already running (pid $(cat "$run/node$i.pid"))"; return 0; }
  "$bin/controller/vigild" --data-dir "$run/node$i" --id "$i" --name "node-$i" \
    --raft "127.0.0.1$i:7000" --api "127.0.0.1$i:8080" --se-listen "127.0.0.1$i:5098" \
    --cluster "$cluster" --admin-password-file "$run/admin-password" >>"$run/node$i.log" 2>&1 &
  echo $! >"$run/node$i.pid"
}

wait_for() { # URL, what
  for _ in $(seq 100); do
    curl "${curl_opts[@]}" -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Prints field FIELD of the JSON document on stdin, or fails with one line (no traceback).
json_field() {
  "$py" -c 'import json,sys
try:
    print(json.load(sys.stdin)[sys.argv[1]])
except Exception as e:
    sys.exit(f"demo: no {sys.argv[1]!r} in the answer ({type(e).__name__})")' "$1"
}

vigil() { "$bin/cli/vigil" --cacert "$run/cluster-ca.pem" "$@"; }

wait_ready() { # seconds
  for _ in $(seq $(($1 * 5))); do
    vigil cluster status 2>/dev/null | grep -q "Status: *Ready" && return 0
    sleep 0.2
  done
  return 1
}

start() {
  [ -x "$bin/controller/vigild" ] || { say "vigild is not built: run 'make' first"; exit 1; }
  stop
  rm -rf "$run"
  mkdir -p "$run"
  # The first admin's password, shared by the three nodes (a new cluster takes it once).
  (umask 077; head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$run/admin-password")
  password=$(cat "$run/admin-password")
  for i in 1 2 3; do start_node "$i"; done
  # HTTPS with the cluster's self-signed certificate: take it from node 1 once it is made.
  for _ in $(seq 100); do
    [ -s "$run/node1/cluster-credentials.json" ] && break
    sleep 0.1
  done
  json_field tls_cert <"$run/node1/cluster-credentials.json" >"$run/cluster-ca.pem" ||
    fail "node 1 made no cluster certificate"
  export CURL_CA_BUNDLE="$run/cluster-ca.pem"
  for i in 1 2 3; do
    wait_for "https://127.0.0.1$i:8080/api/healthz" || fail "controller $i did not answer /api/healthz"
  done
  token=$(curl "${curl_opts[@]}" -u "admin:$password" -X POST https://127.0.0.11:8080/api/token \
            -d '{"description": "make demo"}' | json_field token) || fail "no API token from node 1"
  echo "$token" >"$run/token"
  chmod 600 "$run/token"
  export VIGIL_TOKEN="$token"

  # Two demo backends, each answering with its own name.
  for b in 1 2; do
    mkdir -p "$run/backend$b"
    echo "hello from demo backend $b" >"$run/backend$b/index.html"
    "$py" -m http.server 9000 --bind "127.0.0.2$b" --directory "$run/backend$b" \
      >"$run/backend$b.log" 2>&1 &
    echo $! >"$run/backend$b.pid"
  done

  export VIGIL_CONTROLLER=https://127.0.0.11:8080
  wait_ready 20 || fail "the cluster did not become Ready"
  cat >"$run/hm.json" <<JSON
{"name": "demo-http", "type": "HEALTH_MONITOR_HTTP", "send_interval": 1, "receive_timeout": 0.5}
JSON
  vigil healthmonitor create --file "$run/hm.json" >/dev/null || fail "creating the health monitor failed"
  hm=$(vigil --json healthmonitor show demo-http | json_field uuid) || fail "no health monitor"
  cat >"$run/pool.json" <<JSON
{"name": "demo-pool", "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN", "health_monitor_refs": ["$hm"],
 "servers": [{"ip": "127.0.0.21", "port": 9000}, {"ip": "127.0.0.22", "port": 9000}]}
JSON
  vigil pool create --file "$run/pool.json" >/dev/null || fail "creating the pool failed"
  pool=$(vigil --json pool show demo-pool | json_field uuid) || fail "no pool"
  cat >"$run/vs.json" <<JSON
{"name": "demo-vs", "vip": "127.0.0.30", "services": [{"port": 8000}], "application": "http",
 "pool_ref": "$pool"}
JSON
  vigil virtualservice create --file "$run/vs.json" >/dev/null || fail "creating the virtual service failed"

  # The SE runs from a config file exported from the controllers' objects (the SSH
  # channel between SEs and controllers arrives in its own issue).
  "$py" - "$run" "$token" <<'PY' || fail "exporting the SE's config failed"
import json, ssl, sys, urllib.request
run, token = sys.argv[1], sys.argv[2]
try:
    ctx = ssl.create_default_context(cafile=f"{run}/cluster-ca.pem")
    def get(t):
        req = urllib.request.Request(f"https://127.0.0.11:8080/api/{t}?page_size=1000",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.load(r)["results"]
    doc = {t: get(t) for t in ("healthmonitor", "pool", "virtualservice")}
    json.dump(doc, open(f"{run}/se-config.json", "w"), indent=1)
except Exception as e:
    sys.exit(f"demo: {e}")
PY
  "$bin/se/vigil-se" --name demo-se --data-dir "$run/se" --admin 127.0.0.30:9100 \
    --config-file "$run/se-config.json" >"$run/se.log" 2>&1 &
  echo $! >"$run/se.pid"
  unset CURL_CA_BUNDLE
  wait_for "http://127.0.0.30:9100/status" || fail "the Service Engine did not answer"
  wait_for "http://127.0.0.30:8000/" || fail "the virtual service did not answer"

  cat <<TXT

Vigil demo is running (logs and data in $run).

  REST API (any node):   https://127.0.0.11:8080/api/cluster/runtime
                         https://127.0.0.12:8080/api/cluster  https://127.0.0.13:8080/api/event
  Log in as:             admin / $password   (also in $run/admin-password)
  Cluster certificate:   $run/cluster-ca.pem (SHA-256 fingerprint in $run/node1.log)
  Virtual service:       curl http://127.0.0.30:8000/      (round robin over two backends)
  SE status / metrics:   http://127.0.0.30:9100/status     http://127.0.0.30:9100/metrics

Try:
  export VIGIL_CONTROLLER=https://127.0.0.11:8080 VIGIL_TOKEN=\$(cat $run/token)
  build/src/cli/vigil --cacert $run/cluster-ca.pem cluster status
  build/src/cli/vigil --cacert $run/cluster-ca.pem events
  curl --cacert $run/cluster-ca.pem -u admin:$password https://127.0.0.12:8080/api/pool

Reboot controllers and watch the status and the events (CONTROLLER_NODE_JOINED):
  scripts/demo.sh kill 2          # crash controller 2 (kill -9); stop-node 2 stops it cleanly
  scripts/demo.sh restart 2       # start it again: it rejoins
  scripts/demo.sh kill-all        # crash all three
  scripts/demo.sh restart-all     # start all three again: a leader is elected, Ready again
  scripts/demo.sh status
  make demo-stop                  # stop everything

TXT
  vigil cluster status
}

need_run() {
  [ -f "$run/cluster-ca.pem" ] || { say "no demo in $run: run 'make demo' first"; exit 1; }
  export VIGIL_CONTROLLER=https://127.0.0.11:8080 VIGIL_TOKEN
  VIGIL_TOKEN=$(cat "$run/token")
}

node_arg() {
  case "${1:-}" in
    1|2|3) ;;
    *) say "which controller? 1, 2 or 3"; exit 2 ;;
  esac
}

kill_node() { # N
  if node_running "$1"; then
    local pid
    pid=$(cat "$run/node$1.pid")
    kill -9 "$pid"
    wait_gone "$pid" || exit 1
    rm -f "$run/node$1.pid"
    echo "controller $1 killed (kill -9)"
  else
    echo "controller $1 is not running"
  fi
}

restart_node() { # N
  node_running "$1" && kill_node "$1"
  start_node "$1"
  if wait_for "https://127.0.0.1$1:8080/api/healthz"; then
    echo "controller $1 started (pid $(cat "$run/node$1.pid"))"
  else
    say "controller $1 did not answer /api/healthz within 10 s (log: $run/node$1.log)"
    exit 1
  fi
}

export CURL_CA_BUNDLE="$run/cluster-ca.pem"
case "${1:-}" in
  start) start ;;
  stop) stop; echo "demo stopped" ;;
  status) need_run; vigil cluster status ;;
  kill) need_run; node_arg "${2:-}"; kill_node "$2" ;;
  stop-node) need_run; node_arg "${2:-}"; stop_pidfile "$run/node$2.pid"; echo "controller $2 stopped" ;;
  restart) need_run; node_arg "${2:-}"; restart_node "$2" ;;
  kill-all) need_run; for i in 1 2 3; do kill_node "$i"; done ;;
  restart-all)
    need_run
    for i in 1 2 3; do node_running "$i" && kill_node "$i"; start_node "$i"; done
    for i in 1 2 3; do
      wait_for "https://127.0.0.1$i:8080/api/healthz" || { say "controller $i did not answer (log: $run/node$i.log)"; exit 1; }
    done
    if wait_ready 30; then echo "all three controllers started; the cluster is Ready"; else
      say "the cluster is not Ready after 30 s"; exit 1; fi ;;
  *) usage ;;
esac
