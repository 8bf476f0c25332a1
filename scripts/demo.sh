#!/usr/bin/env bash
# make demo: a 3-node controller cluster, two demo backends and a Service Engine, all on
# 127.0.0.x of this machine, over HTTPS with the cluster's own certificate (the defaults).
# The SE is registered through the API with its own ed25519 key and gets its config from
# the controllers over SSH (`vigil cluster known-hosts` is its --known-hosts file).
# Every process is started and stopped by its PID (files in the run directory).
#
#   scripts/demo.sh start              start everything (a running demo is stopped first)
#   scripts/demo.sh stop               stop everything
#   scripts/demo.sh status             the cluster (as node 1 sees it), the SEs, the SE's state
#   scripts/demo.sh kill N             crash controller N (kill -9)
#   scripts/demo.sh stop-node N        stop controller N (SIGTERM)
#   scripts/demo.sh restart N          start controller N again (kill -9 first if it runs)
#   scripts/demo.sh kill-all           crash all three controllers
#   scripts/demo.sh restart-all        start all three controllers again
#   scripts/demo.sh kill-se            crash the Service Engine (kill -9)
#   scripts/demo.sh restart-se         start the Service Engine again
#
# VIGIL_DEMO_DIR chooses the run directory (default: demo-run in the repository).
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="${VIGIL_DEMO_DIR:-$top/demo-run}"
bin="$top/build/src"
py=/usr/bin/python3
cluster="1@127.0.0.11:7000,2@127.0.0.12:7000,3@127.0.0.13:7000"
se_controllers="127.0.0.11:5098,127.0.0.12:5098,127.0.0.13:5098"
se_admin=127.0.0.30:9100
vs_url=http://127.0.0.30:8000/
curl_opts=(-fsS --connect-timeout 2 -m 10)

usage() {
  { echo "usage:"; sed -n '8,19p' "$0" | sed 's/^# \{0,1\}//'; } >&2
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

# True while the process whose PID is in FILE runs.
pidfile_running() { [ -f "$1" ] && pid_alive "$(cat "$1")"; }

# Crashes the process whose PID is in FILE (kill -9), removes FILE; WHAT names it.
kill_pidfile() { # FILE WHAT
  if pidfile_running "$1"; then
    local pid
    pid=$(cat "$1")
    kill -9 "$pid"
    wait_gone "$pid" || exit 1
    rm -f "$1"
    echo "$2 killed (kill -9)"
  else
    echo "$2 is not running"
  fi
}

node_running() { pidfile_running "$run/node$1.pid"; }

start_node() { # N
  local i=$1
  node_running "$i" && { say "controller $i is already running (pid $(cat "$run/node$i.pid"))"; return 0; }
  "$bin/controller/vigild" --data-dir "$run/node$i" --id "$i" --name "node-$i" \
    --raft "127.0.0.1$i:7000" --api "127.0.0.1$i:8080" --se-listen "127.0.0.1$i:5098" \
    --cluster "$cluster" --admin-password-file "$run/admin-password" >>"$run/node$i.log" 2>&1 &
  echo $! >"$run/node$i.pid"
}

# Runs COMMAND... every 0.1 s until it succeeds (0) or SECONDS have passed (1).
wait_cmd() { # SECONDS COMMAND...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

url_answers() { curl "${curl_opts[@]}" -o /dev/null "$1" 2>/dev/null; }

wait_for() { wait_cmd "${2:-10}" url_answers "$1"; } # URL [SECONDS]

# Prints field FIELD of the JSON document on stdin, or fails with one line (no traceback).
json_field() {
  "$py" -c 'import json,sys
try:
    print(json.load(sys.stdin)[sys.argv[1]])
except Exception as e:
    sys.exit(f"demo: no {sys.argv[1]!r} in the answer ({type(e).__name__})")' "$1"
}

vigil() { "$bin/cli/vigil" --cacert "$run/cluster-ca.pem" "$@"; }

cluster_ready() { vigil cluster status 2>/dev/null | grep -q "Status: *Ready"; }

wait_ready() { wait_cmd "$1" cluster_ready; } # SECONDS

# The SE's state from its own /status ("" when it does not answer).
se_state() { curl -fsS --connect-timeout 2 -m 5 "http://$se_admin/status" 2>/dev/null | json_field state 2>/dev/null || true; }

se_in_state() { [ "$(se_state)" = "$1" ]; } # STATE

se_running() { pidfile_running "$run/se.pid"; }

# Starts the SE with its key and known_hosts; its config comes from the controllers.
start_se() {
  "$bin/se/vigil-se" --name demo-se --data-dir "$run/se" --admin "$se_admin" \
    --controllers "$se_controllers" --key "$run/se-key" --known-hosts "$run/known_hosts" \
    >>"$run/se.log" 2>&1 &
  echo $! >"$run/se.pid"
}

# known_hosts from the CLI, once it lists all three nodes' host keys.
known_hosts_complete() {
  vigil cluster known-hosts >"$run/known_hosts.new" 2>/dev/null &&
    [ "$(grep -c '^\[127\.0\.0\.1[123]\]:5098 ssh-ed25519 ' "$run/known_hosts.new")" = 3 ] &&
    mv "$run/known_hosts.new" "$run/known_hosts"
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

  # The Service Engine: its own key, registered through the API; the controllers' host keys
  # from the CLI; its config pushed by the controllers over SSH.
  ssh-keygen -q -t ed25519 -N '' -C demo-se -f "$run/se-key" </dev/null >/dev/null 2>&1 ||
    fail "ssh-keygen could not make the SE's key"
  "$py" -c 'import json,sys; print(json.dumps({"name": "demo-se", "public_key": sys.argv[1]}))' \
    "$(cat "$run/se-key.pub")" >"$run/se.json" || fail "writing the SE's object failed"
  vigil serviceengine create --file "$run/se.json" >/dev/null || fail "registering the Service Engine failed"
  wait_cmd 10 known_hosts_complete || fail "vigil cluster known-hosts did not list all three controllers"
  start_se
  wait_for "http://$se_admin/status" || fail "the Service Engine did not answer on http://$se_admin/status"
  wait_cmd 30 se_in_state CONNECTED || fail "the Service Engine is not CONNECTED after 30 s (it says '$(se_state)')"
  wait_for "$vs_url" 30 || fail "no traffic through the virtual service $vs_url after 30 s"
  unset CURL_CA_BUNDLE

  cat <<TXT

Vigil demo is running (logs and data in $run).

  Dashboard (any node):  https://127.0.0.11:8080/ui/   (also .12 and .13; the certificate is
                         the cluster's own, self-signed: accept it, or trust $run/cluster-ca.pem)
  REST API (any node):   https://127.0.0.11:8080/api/cluster/runtime
                         https://127.0.0.12:8080/api/cluster  https://127.0.0.13:8080/api/event
  Log in as:             admin / $password   (also in $run/admin-password)
  Cluster certificate:   $run/cluster-ca.pem (SHA-256 fingerprint in $run/node1.log)
  Send traffic:          curl $vs_url      (round robin over two backends)
  Service Engine:        demo-se, state $(se_state), config from the controllers over SSH
  Watch the SE's state:  curl -s http://$se_admin/status      (also /metrics)
                         build/src/cli/vigil --cacert $run/cluster-ca.pem serviceengine list

Try:
  export VIGIL_CONTROLLER=https://127.0.0.11:8080 VIGIL_TOKEN=\$(cat $run/token)
  build/src/cli/vigil --cacert $run/cluster-ca.pem cluster status
  build/src/cli/vigil --cacert $run/cluster-ca.pem events
  curl --cacert $run/cluster-ca.pem -u admin:$password https://127.0.0.12:8080/api/pool

Reboot controllers while traffic flows (e.g. while true; do curl -s $vs_url; sleep 0.2; done)
and watch the status, the events and the SE's state:
  scripts/demo.sh kill 2          # crash controller 2 (kill -9); stop-node 2 stops it cleanly
  scripts/demo.sh restart 2       # start it again: it rejoins; the SE stays CONNECTED
  scripts/demo.sh kill-all        # crash all three: the SE goes HEADLESS and keeps serving
  scripts/demo.sh restart-all     # start all three again: Ready again, the SE CONNECTED
  scripts/demo.sh kill-se         # crash the SE; restart-se starts it again
  scripts/demo.sh status          # the cluster's status, the SEs and the SE's own state
  make demo-stop                  # stop everything

TXT
  vigil cluster status
}

# `status`: the cluster as node 1 sees it, the SEs as the API lists them, the SE's own view.
show_status() {
  local rc=0 state
  vigil cluster status || rc=1
  echo
  vigil serviceengine list || rc=1
  echo
  if se_running; then
    state=$(se_state)
    echo "Service Engine demo-se (pid $(cat "$run/se.pid")): state ${state:-(no answer on http://$se_admin/status)}"
  else
    echo "Service Engine demo-se: not running"
  fi
  return "$rc"
}

kill_se() { kill_pidfile "$run/se.pid" "Service Engine"; }

restart_se() {
  se_running && kill_se
  start_se
  if wait_for "http://$se_admin/status"; then
    echo "Service Engine started (pid $(cat "$run/se.pid")), state $(se_state)"
  else
    say "the Service Engine did not answer http://$se_admin/status within 10 s (log: $run/se.log)"
    exit 1
  fi
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

kill_node() { kill_pidfile "$run/node$1.pid" "controller $1"; } # N

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
  status) need_run; show_status ;;
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
  kill-se) need_run; kill_se ;;
  restart-se) need_run; restart_se ;;
  *) usage ;;
esac
