#!/usr/bin/env bash
# Three controllers on three "machines" with a cluster IP, on this host: network
# namespaces vigil-demo-ctl1..3 and vigil-demo-client joined by a bridge (in its own
# namespace vigil-demo-sw), addresses 198.18.0.11-13 and 198.18.0.41, cluster IP
# 198.18.0.100/24 on eth0. Needs root (namespaces, CAP_NET_ADMIN) and `make` first.
#
#   scripts/netns-demo.sh start     # build the hosts, start vigild on each, show the VIP
#   scripts/netns-demo.sh status    # who holds the VIP, what the client sees on it
#   scripts/netns-demo.sh failover  # SIGTERM the leader, watch the VIP move, restart it
#   scripts/netns-demo.sh reboot    # the same with a host reboot (kill -9, link down/up)
#   scripts/netns-demo.sh stop      # stop every process by PID, delete the namespaces
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="$top/demo-run/netns"
vigild="${VIGILD:-$top/build/src/controller/vigild}"
prefix=vigil-demo
vip=198.18.0.100
cluster="1@198.18.0.11:7000,2@198.18.0.12:7000,3@198.18.0.13:7000"

die() { echo "netns-demo: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

in_ns() { local ns=$1; shift; ip netns exec "$prefix-$ns" "$@"; }

start_node() { # N
  local i=$1
  ip netns exec "$prefix-ctl$i" "$vigild" --data-dir "$run/node$i" --id "$i" --name "node-$i" \
    --raft "198.18.0.1$i:7000" --api "0.0.0.0:8080" --se-listen "198.18.0.1$i:5098" \
    --cluster "$cluster" --vip "$vip/24" --vip-dev eth0 >>"$run/node$i.log" 2>&1 &
  echo $! >"$run/node$i.pid" # `ip netns exec` execs vigild: the same PID
}

kill_host() { # NS: every process in it, by PID
  local pid
  for pid in $(ip netns pids "$prefix-$1" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
}

add_host() { # NAME ADDRESS
  ip netns add "$prefix-$1"
  ip -n "$prefix-sw" link add "$1" type veth peer name eth0 netns "$prefix-$1"
  ip -n "$prefix-sw" link set "$1" master br0 up
  ip -n "$prefix-$1" link set lo up
  ip -n "$prefix-$1" addr add "$2/24" dev eth0
  ip -n "$prefix-$1" link set eth0 up
}

holder() {
  local i
  for i in 1 2 3; do
    ip -n "$prefix-ctl$i" -o -4 addr show dev eth0 2>/dev/null | grep -q " $vip/" && echo "$i"
  done
  return 0
}

wait_holder() { # [EXCLUDE]: the one node (other than EXCLUDE) holding the VIP and
  # answering the client on it; waits up to 20 s
  local h
  for _ in $(seq 200); do
    h=$(holder | grep -v "^${1:-x}\$" || true)
    if [ -n "$h" ] && [ "$(echo "$h" | wc -l)" = 1 ]; then
      if [ "$(in_ns client curl -s -m 1 "http://$vip:8080/api/cluster/runtime" | grep -o '"node_id": *[0-9]*' | grep -o '[0-9]*$')" = "$h" ]; then
        echo "$h"; return 0
      fi
    fi
    sleep 0.05
  done
  die "no single holder of $vip after 20 s (logs in $run)"
}

status() {
  echo "VIP $vip held by: node $(holder | tr '\n' ' ')"
  echo "client's neighbour entry: $(ip -n "$prefix-client" neigh show "$vip" dev eth0)"
  echo "client: curl http://$vip:8080/api/cluster/runtime ->"
  in_ns client curl -s -m 2 "http://$vip:8080/api/cluster/runtime" | head -c 300; echo
}

stop() {
  local h
  for h in ctl1 ctl2 ctl3 client; do kill_host "$h"; done
  for h in ctl1 ctl2 ctl3 client sw; do ip netns del "$prefix-$h" 2>/dev/null || true; done
  rm -f "$run"/*.pid
}

start() {
  [ -x "$vigild" ] || die "$vigild not built (run make)"
  stop
  rm -rf "$run"; mkdir -p "$run"
  ip netns add "$prefix-sw"
  ip -n "$prefix-sw" link add br0 type bridge
  ip -n "$prefix-sw" link set br0 up
  for i in 1 2 3; do add_host "ctl$i" "198.18.0.1$i"; done
  add_host client 198.18.0.41
  for i in 1 2 3; do start_node "$i"; done
  echo "node $(wait_holder) leads and holds $vip"
  status
  echo "try: ip netns exec $prefix-client curl http://$vip:8080/api/cluster/runtime"
  echo "     $0 failover | reboot | status | stop"
}

failover() { # how: stop | reboot
  local old new t0 t1
  old=$(wait_holder)
  t0=$(date +%s%N)
  if [ "$1" = stop ]; then
    kill -TERM "$(cat "$run/node$old.pid")"
    while kill -0 "$(cat "$run/node$old.pid")" 2>/dev/null; do sleep 0.05; done
  else
    kill_host "ctl$old"
    ip -n "$prefix-ctl$old" link set eth0 down
  fi
  new=$(wait_holder "$old")
  t1=$(date +%s%N)
  echo "leader node $old gone ($1): node $new holds $vip and answers on it after $(( (t1 - t0) / 1000000 )) ms"
  [ "$1" = stop ] || ip -n "$prefix-ctl$old" link set eth0 up
  start_node "$old"
  sleep 2
  status
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  failover) failover stop ;;
  reboot) failover reboot ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
