#!/usr/bin/env bash
# Three hosts for Beam's portable stack, each a network namespace with its own address and
# hostname on one bridge: beam-job runs Beam's Python job service (job_service.py), and
# beam-pool-1 / beam-pool-2 each run an SDK worker pool (worker_pool_main), the way Flink
# on Kubernetes runs one pool beside each TaskManager. The filesystem is shared (a
# network namespace is not a mount namespace), so every host sees the same files.
#
#   hosts.sh start   create the hosts, start the services, wait (bounded) until they listen
#   hosts.sh stop    stop the services and remove namespaces, bridge and hosts files
#   hosts.sh env     print the addresses (shell assignments) for a client in the root namespace
# Exit codes: 0 ok; 1 a host did not come up within $KUBETFX_HOSTS_WAIT s (its log is printed;
# everything is removed); 2 cannot create hosts here (not root, no iproute2 or unshare).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PREFIX="${KUBETFX_HOSTS_PREFIX:-kbp}"
SUBNET="${KUBETFX_HOSTS_SUBNET:-10.231.77}"   # /24; .1 is the bridge (the client's side)
STATE="${KUBETFX_HOSTS_STATE:-$REPO/build/portable-hosts}"
PYTHON="${KUBETFX_HOSTS_PYTHON:-$REPO/.venv/bin/python}"
WAIT="${KUBETFX_HOSTS_WAIT:-60}"
JOB_PORT=8099
POOL_PORT=50000
BRIDGE="$PREFIX-br0"
FORWARD_RULE=(-i "$BRIDGE" -o "$BRIDGE" -m comment --comment "kubetfx portable-hosts" -j ACCEPT)
HOSTS=(beam-job beam-pool-1 beam-pool-2)
declare -A ADDRESS=([beam-job]="$SUBNET.2" [beam-pool-1]="$SUBNET.3" [beam-pool-2]="$SUBNET.4")

ns() { echo "$PREFIX-${1#beam-}"; }

command_of() {
  case "$1" in
    beam-job) echo "$PYTHON $HERE/job_service.py --port $JOB_PORT --host ${ADDRESS[beam-job]} --staging_dir $STATE/staging" ;;
    *) echo "$PYTHON -m apache_beam.runners.worker.worker_pool_main --service_port $POOL_PORT" ;;
  esac
}

can_run() {
  if [ "$(id -u)" != 0 ]; then echo "hosts.sh: needs root (ip netns); running as uid $(id -u)" >&2; exit 2; fi
  for tool in ip unshare setsid; do
    command -v "$tool" >/dev/null || { echo "hosts.sh: '$tool' not found (apt-get install iproute2 util-linux)" >&2; exit 2; }
  done
  [ -x "$PYTHON" ] || { echo "hosts.sh: no Python at $PYTHON (make install)" >&2; exit 2; }
}

stop() {
  for host in "${HOSTS[@]}"; do
    local pidfile="$STATE/$host.pid"
    if [ -f "$pidfile" ]; then
      # setsid made each host's service a process group: its SDK workers go with it.
      kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  for host in "${HOSTS[@]}"; do
    local pidfile="$STATE/$host.pid" n
    if [ -f "$pidfile" ]; then
      for n in $(seq 50); do kill -0 -- "-$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    if ip netns list | grep -qw "$(ns "$host")"; then
      for pid in $(ip netns pids "$(ns "$host")" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns delete "$(ns "$host")" 2>/dev/null || true
    fi
    rm -rf "/etc/netns/$(ns "$host")"
  done
  ip link delete "$BRIDGE" 2>/dev/null || true
  if command -v iptables >/dev/null; then
    while iptables -D FORWARD "${FORWARD_RULE[@]}" 2>/dev/null; do :; done
  fi
}

wait_listening() {  # host port: bounded; fails early if the service died
  local host="$1" port="$2" deadline=$((SECONDS + WAIT))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$(cat "$STATE/$host.pid")" 2>/dev/null; then
      echo "hosts.sh: $host exited while starting; its log ($STATE/$host.log):" >&2; tail -20 "$STATE/$host.log" >&2
      return 1
    fi
    if "$PYTHON" -c "import socket,sys; socket.create_connection(('${ADDRESS[$host]}', $port), timeout=1).close()" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "hosts.sh: $host did not listen on ${ADDRESS[$host]}:$port within $WAIT s; its log ($STATE/$host.log):" >&2
  tail -20 "$STATE/$host.log" >&2
  return 1
}

start() {
  can_run
  stop
  mkdir -p "$STATE/staging"
  ip link add "$BRIDGE" type bridge
  ip addr add "$SUBNET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Host to host across the bridge: with br_netfilter on, bridged frames pass iptables'
  # FORWARD chain, whose policy Docker sets to DROP (it accepts only docker0's own).
  if command -v iptables >/dev/null; then iptables -I FORWARD "${FORWARD_RULE[@]}"; fi
  local hosts_file="127.0.0.1 localhost"$'\n'
  for host in "${HOSTS[@]}"; do hosts_file+="${ADDRESS[$host]} $host"$'\n'; done
  local i=0
  for host in "${HOSTS[@]}"; do
    local name; name="$(ns "$host")"; i=$((i + 1))
    ip netns add "$name"
    # `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts: how hosts find each other by name.
    mkdir -p "/etc/netns/$name" && printf '%s' "$hosts_file" > "/etc/netns/$name/hosts"
    ip link add "$PREFIX-v$i" type veth peer name "$PREFIX-p$i"
    ip link set "$PREFIX-p$i" netns "$name"
    ip link set "$PREFIX-v$i" master "$BRIDGE"
    ip link set "$PREFIX-v$i" up
    ip netns exec "$name" ip addr add "${ADDRESS[$host]}/24" dev "$PREFIX-p$i"
    ip netns exec "$name" ip link set "$PREFIX-p$i" up
    ip netns exec "$name" ip link set lo up
    # Its own hostname (UTS namespace): the job service tells workers where it is by name.
    # PATH: a worker pool starts its SDK workers with the `python` found there.
    setsid ip netns exec "$name" unshare --uts sh -c \
      "hostname $host && PATH=$(dirname "$PYTHON"):\$PATH exec $(command_of "$host")" \
      > "$STATE/$host.log" 2>&1 < /dev/null &
    echo $! > "$STATE/$host.pid"
  done
  for host in "${HOSTS[@]}"; do
    local port=$POOL_PORT; [ "$host" = beam-job ] && port=$JOB_PORT
    wait_listening "$host" "$port" || { stop; exit 1; }
  done
  env_vars
}

env_vars() {
  echo "KUBETFX_BEAM_JOB_ENDPOINT=${ADDRESS[beam-job]}:$JOB_PORT"
  echo "KUBETFX_BEAM_POOLS=${ADDRESS[beam-pool-1]}:$POOL_PORT,${ADDRESS[beam-pool-2]}:$POOL_PORT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) env_vars ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
