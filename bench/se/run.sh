#!/usr/bin/env bash
# bench/se/run.sh: vigil-se against HAProxy 2.6 and nginx, same machine, same run.
#   HTTP: wrk -t1 -c64 keep-alive, 100-byte responses from two nginx backends.
#   TCP:  the same wrk load through each proxy's TCP mode.
#   Memory: RSS of vigil-se and HAProxy holding 10k idle client connections.
# The proxy under test is pinned to CPU 0 (taskset), wrk and the backends to CPU 1.
# vigil-se runs with its access log on (its normal mode); HAProxy without logs and with
# "option httplog" to a local syslog socket. Prints a table and the ratios to HAProxy.
# Env: DURATION (s, default 10), CONNS (default 64), IDLE (default 9000), VIGIL_SE_BIN.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SE_BIN="${VIGIL_SE_BIN:-$repo/build/src/se/vigil-se}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-64}"
IDLE="${IDLE:-9000}"
# HAProxy reserves two descriptors per maxconn; with this machine's hard limit of 20000
# descriptors it cannot take 10k connections, hence 9000 idle connections by default.
HA_MAXCONN=$(( IDLE + 500 ))
PROXY_CPU=0
LOAD_CPU=1
PY=/usr/bin/python3
work="$(mktemp -d /tmp/vigil-bench-se.XXXXXX)"
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

for tool in wrk haproxy nginx taskset; do
    command -v "$tool" >/dev/null || { echo "bench/se: $tool is not installed (make deps)" >&2; exit 2; }
done
[ -x "$SE_BIN" ] || { echo "bench/se: $SE_BIN is not built (make)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

B1=18101 B2=18102 PORT_SE=18110 PORT_SE_TCP=18111 ADMIN=18112 PORT_HA=18120 PORT_HA_TCP=18121
PORT_HA_LOG=18122 PORT_NG=18130

wait_port() {
    local port=$1 i
    for i in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench/se: nothing listens on $port" >&2
    exit 1
}

# ---- backends: two nginx, 100-byte bodies, on the load CPU ----
body="$(head -c 99 /dev/zero | tr '\0' 'x')"
cat > "$work/backend.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/backend.pid;
error_log $work/backend-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$B1 reuseport; listen 127.0.0.1:$B2 reuseport;
             location / { return 200 "$body\n"; } }
}
NGX
taskset -c $LOAD_CPU nginx -c "$work/backend.conf" -p "$work" &
pids+=($!)
wait_port $B1; wait_port $B2

# ---- vigil-se (access log on) ----
cat > "$work/se.json" <<JSON
{"pool": [{"name": "bench", "servers": [{"ip": "127.0.0.1", "port": $B1}, {"ip": "127.0.0.1", "port": $B2}]}],
 "virtualservice": [
   {"name": "http", "vip": "127.0.0.1", "services": [{"port": $PORT_SE}], "pool_ref": "bench"},
   {"name": "tcp", "vip": "127.0.0.1", "services": [{"port": $PORT_SE_TCP}], "application": "tcp", "pool_ref": "bench"}]}
JSON
taskset -c $PROXY_CPU "$SE_BIN" --name bench --data-dir "$work/se-data" --admin 127.0.0.1:$ADMIN \
    --config-file "$work/se.json" 2>"$work/se.log" &
se_pid=$!
pids+=($se_pid)
wait_port $PORT_SE; wait_port $PORT_SE_TCP

# ---- HAProxy 2.6, one thread; a second instance logs with option httplog ----
$PY "$here/syslog_sink.py" "$work/log.sock" > "$work/syslog.out" &
pids+=($!)
for i in $(seq 1 100); do [ -S "$work/log.sock" ] && break; sleep 0.05; done
cat > "$work/haproxy.cfg" <<HA
global
    nbthread 1
    maxconn ${HA_MAXCONN}
    log $work/log.sock local0
defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend http
    mode http
    bind 127.0.0.1:$PORT_HA
    default_backend web
frontend http_logged
    mode http
    log global
    option httplog
    bind 127.0.0.1:$PORT_HA_LOG
    default_backend web
frontend tcp
    mode tcp
    bind 127.0.0.1:$PORT_HA_TCP
    default_backend raw
backend web
    mode http
    balance roundrobin
    http-reuse always
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
backend raw
    mode tcp
    balance roundrobin
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
HA
taskset -c $PROXY_CPU haproxy -f "$work/haproxy.cfg" -db 2>"$work/haproxy.log" &
ha_pid=$!
pids+=($ha_pid)
wait_port $PORT_HA; wait_port $PORT_HA_TCP; wait_port $PORT_HA_LOG

# ---- nginx as a reverse proxy, one worker ----
cat > "$work/proxy.conf" <<NGX
worker_processes 1;
daemon off;
master_process off;
pid $work/proxy.pid;
error_log $work/proxy-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream web { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive 128; }
    server { listen 127.0.0.1:$PORT_NG;
             location / { proxy_pass http://web; proxy_http_version 1.1;
                          proxy_set_header Connection ""; } }
}
NGX
taskset -c $PROXY_CPU nginx -c "$work/proxy.conf" -p "$work" &
ng_pid=$!
pids+=($ng_pid)
wait_port $PORT_NG

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
tck=$(getconf CLK_TCK)

# run NAME PID PORT: wrk through the proxy; prints "NAME req/s p50 p99 us/req"
results=()
run() {
    local name=$1 pid=$2 port=$3 out c0 c1 rps p50 p99 reqs us
    taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    c0=$(cpu_ticks "$pid")
    out=$(taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/")
    c1=$(cpu_ticks "$pid")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    us=$(awk -v c=$((c1 - c0)) -v t="$tck" -v n="$reqs" 'BEGIN {printf "%.1f", c * 1e6 / t / n}')
    if grep -q "Non-2xx" <<<"$out"; then echo "bench/se: $name had errors: $out" >&2; fi
    printf '%-26s %10s %8s %8s %8s\n' "$name" "$rps" "$p50" "$p99" "$us"
    results+=("$name $rps $us")
}

echo "# wrk -t1 -c$CONNS -d${DURATION}s, proxy on CPU $PROXY_CPU, wrk + 2 nginx backends on CPU $LOAD_CPU"
printf '%-26s %10s %8s %8s %8s\n' "proxy" "req/s" "p50" "p99" "cpu_us/req"
run "vigil-se http (logs on)" $se_pid $PORT_SE
run "haproxy http (no logs)" $ha_pid $PORT_HA
run "haproxy http (httplog)" $ha_pid $PORT_HA_LOG
run "nginx proxy" $ng_pid $PORT_NG
run "vigil-se tcp (logs on)" $se_pid $PORT_SE_TCP
run "haproxy tcp" $ha_pid $PORT_HA_TCP

ratio() { # ratio NAME_A NAME_B: req/s and cpu of A over B
    local a b
    a=$(printf '%s\n' "${results[@]}" | grep "^$1 " | awk '{print $(NF-1), $NF}')
    b=$(printf '%s\n' "${results[@]}" | grep "^$2 " | awk '{print $(NF-1), $NF}')
    awk -v a="$a" -v b="$b" -v n="$1 / $2" 'BEGIN {split(a, x, " "); split(b, y, " ");
        printf "%-52s req/s %.2fx  cpu/req %.2fx\n", n, x[1] / y[1], x[2] / y[2]}'
}
echo
ratio "vigil-se http (logs on)" "haproxy http (no logs)"
ratio "vigil-se http (logs on)" "haproxy http (httplog)"
ratio "vigil-se tcp (logs on)" "haproxy tcp"

# ---- memory per idle client connection ----
idle() { # idle NAME PID PORT
    local name=$1 pid=$2 port=$3 before after
    before=$(rss_kb "$pid")
    coproc IDLEC { taskset -c $LOAD_CPU $PY "$here/idle_conns.py" 127.0.0.1 "$port" "$IDLE"; }
    read -r line <&"${IDLEC[0]}"
    # the proxy has accepted them once its RSS stops moving; take a few samples
    for i in 1 2 3 4 5; do sleep 0.2; done
    after=$(rss_kb "$pid")
    exec {IDLEC[1]}>&-
    wait "$IDLEC_PID" 2>/dev/null || true
    printf '%-26s %6d kB for %d idle connections = %5.2f kB each\n' "$name" $((after - before)) \
        "$IDLE" "$(awk -v d=$((after - before)) -v n="$IDLE" 'BEGIN {print d / n}')"
}
echo
echo "# RSS growth holding $IDLE idle client connections"
idle "vigil-se" $se_pid $PORT_SE
idle "haproxy" $ha_pid $PORT_HA
