#!/usr/bin/env bash
# make demo: a 3-node controller cluster, two demo backends and a Service Engine, all on
# 127.0.0.x of this machine. `make demo-stop` (or scripts/demo.sh stop) stops them by PID.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="$top/demo-run"
bin="$top/build/src"
cluster="1@127.0.0.11:7000,2@127.0.0.12:7000,3@127.0.0.13:7000"

stop() {
  [ -d "$run" ] || return 0
  for pidfile in "$run"/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

wait_for() { # URL, what
  for _ in $(seq 100); do
    curl -fsS -m 1 "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "demo: $2 did not come up (logs in $run)" >&2
  exit 1
}

start() {
  stop
  rm -rf "$run"
  mkdir -p "$run"
  # The first admin's password, shared by the three nodes (a new cluster takes it once).
  (umask 077; head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$run/admin-password")
  password=$(cat "$run/admin-password")
  for i in 1 2 3; do
    "$bin/controller/vigild" --data-dir "$run/node$i" --id "$i" --name "node-$i" \
      --raft "127.0.0.1$i:7000" --api "127.0.0.1$i:8080" --se-listen "127.0.0.1$i:5098" \
      --cluster "$cluster" --admin-password-file "$run/admin-password" >"$run/node$i.log" 2>&1 &
    echo $! >"$run/node$i.pid"
  done
  # HTTPS with the cluster's self-signed certificate: take it from node 1 once it is made.
  for _ in $(seq 100); do
    [ -s "$run/node1/cluster-credentials.json" ] && break
    sleep 0.1
  done
  /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tls_cert"])' \
    "$run/node1/cluster-credentials.json" >"$run/cluster-ca.pem"
  export CURL_CA_BUNDLE="$run/cluster-ca.pem"
  for i in 1 2 3; do wait_for "https://127.0.0.1$i:8080/api/healthz" "node-$i"; done
  token=$(curl -fsS -u "admin:$password" -X POST https://127.0.0.11:8080/api/token \
            -d '{"description": "make demo"}' |
          /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  echo "$token" >"$run/token"
  chmod 600 "$run/token"
  export VIGIL_TOKEN="$token"

  # Two demo backends, each answering with its own name.
  for b in 1 2; do
    mkdir -p "$run/backend$b"
    echo "hello from demo backend $b" >"$run/backend$b/index.html"
    /usr/bin/python3 -m http.server 9000 --bind "127.0.0.2$b" --directory "$run/backend$b" \
      >"$run/backend$b.log" 2>&1 &
    echo $! >"$run/backend$b.pid"
  done

  export VIGIL_CONTROLLER=https://127.0.0.11:8080
  vigil() { "$bin/cli/vigil" --cacert "$run/cluster-ca.pem" "$@"; }
  for _ in $(seq 100); do
    vigil cluster status 2>/dev/null | grep -q "Status: *Ready" && break
    sleep 0.1
  done
  cat >"$run/hm.json" <<JSON
{"name": "demo-http", "type": "HEALTH_MONITOR_HTTP", "send_interval": 1, "receive_timeout": 0.5}
JSON
  vigil healthmonitor create --file "$run/hm.json" >/dev/null
  hm=$(vigil --json healthmonitor show demo-http | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
  cat >"$run/pool.json" <<JSON
{"name": "demo-pool", "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN", "health_monitor_refs": ["$hm"],
 "servers": [{"ip": "127.0.0.21", "port": 9000}, {"ip": "127.0.0.22", "port": 9000}]}
JSON
  vigil pool create --file "$run/pool.json" >/dev/null
  pool=$(vigil --json pool show demo-pool | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
  cat >"$run/vs.json" <<JSON
{"name": "demo-vs", "vip": "127.0.0.30", "services": [{"port": 8000}], "application": "http",
 "pool_ref": "$pool"}
JSON
  vigil virtualservice create --file "$run/vs.json" >/dev/null

  # The SE runs from a config file exported from the controllers' objects (the SSH
  # channel between SEs and controllers arrives in its own issue).
  /usr/bin/python3 - "$run" "$token" <<'PY'
import json, ssl, sys, urllib.request
run, token = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=f"{run}/cluster-ca.pem")
def get(t):
    req = urllib.request.Request(f"https://127.0.0.11:8080/api/{t}?page_size=1000",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.load(r)["results"]
json.dump({"healthmonitor": get("healthmonitor"), "pool": get("pool"),
           "virtualservice": get("virtualservice")}, open(f"{run}/se-config.json", "w"), indent=1)
PY
  "$bin/se/vigil-se" --name demo-se --data-dir "$run/se" --admin 127.0.0.30:9100 \
    --config-file "$run/se-config.json" >"$run/se.log" 2>&1 &
  echo $! >"$run/se.pid"
  unset CURL_CA_BUNDLE
  wait_for "http://127.0.0.30:9100/status" "the Service Engine"
  wait_for "http://127.0.0.30:8000/" "the virtual service"

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
  kill -9 \$(cat $run/node1.pid)        # reboot a node: watch status and events
  make demo-stop                         # stop everything

TXT
  vigil cluster status
}

case "${1:-start}" in
  start) start ;;
  stop) stop; echo "demo stopped" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
