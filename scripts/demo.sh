#!/usr/bin/env bash
# The README's main command: installs what is missing, builds (server, agents, web UI), starts
# `pingmesh server` on its embedded SQLite store and a mesh of real agents, prints the UI URL and
# keeps running until Ctrl-C, which stops everything and leaves nothing behind.
#
#   scripts/demo.sh [--loopback | --lab] [--port 9000] [--interval-ms 2000]
#                   [--fault-after S [--fault-for S]] [--run-for S] [--lock-wait S]
#                   [--binary PATH] [--state-dir DIR]
#
# Lab mode (default when it has the rights: root, network namespaces, no lab already up, the lab
# lock /tmp/pingmesh-lab.lock free): lab/lab.sh builds 2 DCs x 3 racks x 4 hosts in network
# namespaces (lab/topologies/demo.yaml, L3 Clos, ECMP, 1 ms between the DCs), one real agent
# runs in every host namespace, the server listens on 10.255.0.1:PORT. dc-west is registered in
# rack mode by import, dc-east in switch mode by `pingmesh ctl` (racks by CIDR, servers created by
# the agents' heartbeats). Both DCs get their fabric devices (spines and ToRs from `lab.sh
# devices`), so a spine's loss is narrowed to that spine. The lock is held while the lab is up.
# Loopback mode (fallback, or --loopback): 24 agents on 127.10.x.y, server on 127.0.0.1:PORT.
#
#   --loopback         force the loopback mesh        --lab   force the lab (fail if impossible)
#   --fault-after S    after S seconds inject a fault: lab: 5 % loss on rack d1r2's uplinks
#                      (rack:d1r2, dc-east); loopback: stop agent dc1-r2-s2 (server down)
#   --fault-for S      undo the fault S seconds later (default 90; 0 = keep it)
#   --run-for S        stop by itself after S seconds (non-interactive runs, tests)
#   --lock-wait S      wait up to S s for the lab lock (default 0: busy -> loopback)
#   --binary PATH      use this pingmesh binary; skips install and build
#   --state-dir DIR    database, collector data, logs (default .demo/lab or .demo/loopback)
# Delete the state dir to start afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
port=9000
interval_ms=2000
fault_after=0
fault_for=90
run_for=0
lock_wait=0
mode=auto
bin=""
state=""
while (($#)); do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --interval-ms) interval_ms="$2"; shift 2 ;;
    --fault-after|--fault-after-s) fault_after="$2"; shift 2 ;;
    --fault-for) fault_for="$2"; shift 2 ;;
    --run-for) run_for="$2"; shift 2 ;;
    --lock-wait) lock_wait="$2"; shift 2 ;;
    --loopback) mode=loopback; shift ;;
    --lab) mode=lab; shift ;;
    --binary) bin="$(realpath "$2")"; shift 2 ;;
    --state-dir) state="$2"; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in port interval_ms fault_after fault_for run_for lock_wait; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "demo: --${v//_/-} wants a whole number, got '${!v}'" >&2; exit 2; }
done

say() { echo "demo: $*"; }
lab_sh="$repo/lab/lab.sh"
lockfile=/tmp/pingmesh-lab.lock
lockfd=""

# Can we run the lab? Sets why_not when not.
why_not=""
lab_possible() {
  if [[ $(id -u) -ne 0 ]]; then why_not="not root (network namespaces need root)"; return 1; fi
  for t in ip nft iptables python3 flock; do
    command -v "$t" >/dev/null 2>&1 || { why_not="$t not installed"; return 1; }
  done
  if ! ip netns add pm-demo-probe 2>/dev/null; then why_not="cannot create a network namespace"; return 1; fi
  ip netns del pm-demo-probe 2>/dev/null || true
  if [[ -e /run/pmlab/state.json ]]; then
    why_not="a lab is already up on this machine (someone's test or demo; 'lab/lab.sh down' removes it)"
    return 1
  fi
  exec {lockfd}>>"$lockfile"
  if ! flock -w "$lock_wait" "$lockfd"; then
    exec {lockfd}>&-; lockfd=""
    why_not="the lab lock $lockfile is busy (a lab test or benchmark is running)"
    return 1
  fi
  return 0
}

if [[ $mode != loopback ]]; then
  if lab_possible; then mode=lab
  elif [[ $mode == lab ]]; then echo "demo: --lab: cannot run the lab: $why_not" >&2; exit 1
  else say "using the loopback mesh: $why_not"; mode=loopback
  fi
fi

if [[ -z $bin ]]; then
  if [[ $mode == lab ]]; then scripts/install-deps.sh lab; else scripts/install-deps.sh build; fi
  scripts/build.sh release pingmesh
  if [[ $mode == lab ]]; then cmake --build build --target pm-delayline >/dev/null 2>&1 || true; fi
  bin="$repo/build/src/cmd/pingmesh"
fi
if [[ -z ${PMLAB_DELAYLINE:-} && -x "$(dirname "$bin")/../../lab/delayline/pm-delayline" ]]; then
  export PMLAB_DELAYLINE="$(realpath "$(dirname "$bin")/../../lab/delayline/pm-delayline")"
fi
state="${state:-$repo/.demo/$mode}"
mkdir -p "$state/logs"
state="$(realpath "$state")"
export PMLAB_RUN_DIR="$state/lab-run"

if [[ $mode == lab ]]; then host=10.255.0.1; else host=127.0.0.1; fi
url="http://$host:$port"
if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 ||
   ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
  echo "demo: port $port is already in use ('ss -ltnp sport = :$port'); stop it or use --port" >&2
  exit 1
fi

pids=()       # processes we started (agents, server)
agents=()     # name:pid
lab_up=0
stopping=0
stop_all() {
  ((stopping)) && return; stopping=1
  trap - INT TERM EXIT
  echo
  say "stopping ${#pids[@]} processes"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((lab_up)); then
    say "lab down"
    "$lab_sh" down {lockfd}>&- >>"$state/logs/lab.log" 2>&1 || say "lab down failed, see $state/logs/lab.log"
  fi
  [[ -n $lockfd ]] && exec {lockfd}>&-
  say "stopped (state kept in $state)"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

# Runs a command with the lab lock's descriptor closed, so nothing we start inherits it.
nolock() { if [[ -n $lockfd ]]; then "$@" {lockfd}>&-; else "$@"; fi; }
# For background processes: `spawn cmd ... &` -- the subshell execs, so $! is the command's PID.
spawn() { if [[ -n $lockfd ]]; then exec "$@" {lockfd}>&-; else exec "$@"; fi; }

probes='[{"protocol":"tcp","port":9001},{"protocol":"udp","port":9001},{"protocol":"icmp"},{"protocol":"http","port":9002}]'
agent_flags=(--lab-min-interval-ms 1000 --heartbeat-interval-ms 2000 --pull-interval-ms 2000
             --batch-interval-ms 2000)

if [[ $mode == lab ]]; then
  say "lab up (2 DCs x 3 racks x 4 hosts, lab/topologies/demo.yaml)"
  lab_up=1
  nolock "$lab_sh" up lab/topologies/demo.yaml >"$state/logs/lab.log" 2>&1 ||
    { cat "$state/logs/lab.log" >&2; exit 1; }
  admin_token=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  agent_token=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$admin_token" >"$state/admin-token"; chmod 600 "$state/admin-token"
  # Each DC's fabric devices (spines and ToRs, every port address): the analyzer's traceroutes
  # narrow a spine-layer loss verdict to `spine:<dc>/<spine>` (docs/ANALYZER.md).
  devices_east=$(nolock "$lab_sh" devices dc-east) || { say "lab.sh devices dc-east failed"; exit 1; }
  devices_west=$(nolock "$lab_sh" devices dc-west) || { say "lab.sh devices dc-west failed"; exit 1; }
  # dc-west (DC 2): rack mode, registered by import.
  topo="$state/topology.json"
  {
    echo "{\"settings\":{\"stopped\":false},\"dcs\":[{\"name\":\"dc-west\",\"mode\":\"rack\",\"interval_ms\":$interval_ms,\"inter_dc_servers\":3,\"probes\":$probes,\"devices\":$devices_west}],"
    echo '"racks":[{"dc":"dc-west","name":"d2r1"},{"dc":"dc-west","name":"d2r2"},{"dc":"dc-west","name":"d2r3"}],"servers":['
    first=1
    for r in 1 2 3; do for h in 1 2 3 4; do
      ((first)) || echo ','; first=0
      echo "{\"name\":\"d2r${r}h$h\",\"dc\":\"dc-west\",\"rack\":\"d2r$r\",\"addresses\":[\"10.2.$r.$h\",\"fd00:2:$r::$h\"]}"
    done; done
    echo ']}'
  } >"$topo"
  spawn "$bin" server --listen "$host:$port" --db "$state/pingmesh.db" --data-dir "$state/data" \
    --admin-token "$admin_token" --agent-token "$agent_token" --heartbeat-interval-s 2 \
    --min-interval-ms 1000 --import "$topo" >"$state/logs/server.log" 2>&1 &
else
  topo="$state/topology.json"
  {
    echo '{"settings":{"stopped":false},"dcs":['
    for d in 1 2; do
      [[ $d == 2 ]] && echo ','
      echo "{\"name\":\"dc$d\",\"mode\":\"rack\",\"interval_ms\":$interval_ms,\"inter_dc_servers\":3,\"probes\":$probes}"
    done
    echo '],"racks":['
    first=1
    for d in 1 2; do for r in 1 2 3; do
      ((first)) || echo ','; first=0
      echo "{\"dc\":\"dc$d\",\"name\":\"dc$d-r$r\"}"
    done; done
    echo '],"servers":['
    first=1
    for d in 1 2; do for r in 1 2 3; do for s in 1 2 3 4; do
      ((first)) || echo ','; first=0
      echo "{\"name\":\"dc$d-r$r-s$s\",\"dc\":\"dc$d\",\"rack\":\"dc$d-r$r\",\"addresses\":[\"127.10.$((10 * d + r)).$s\"]}"
    done; done; done
    echo ']}'
  } >"$topo"
  "$bin" server --listen "$host:$port" --db "$state/pingmesh.db" --data-dir "$state/data" \
    --min-interval-ms 1000 --import "$topo" >"$state/logs/server.log" 2>&1 &
fi
pids+=($!)
for _ in $(seq 100); do
  curl -sf "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$state/logs/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf "$url/healthz" >/dev/null || { say "server did not answer on $url"; exit 1; }

if [[ $mode == lab ]]; then
  ctl=("$bin" ctl --server "$url" --token "$admin_token")
  # dc-east (DC 1): switch mode through the CLI, racks by CIDR; servers come from heartbeats.
  "${ctl[@]}" dc add dc-east --mode switch --interval-ms "$interval_ms" --inter-dc-servers 3 \
    --probe tcp:9001 --probe udp:9001 --probe icmp --probe http:9002 >>"$state/logs/ctl.log" 2>&1 ||
    { cat "$state/logs/ctl.log" >&2; exit 1; }
  "${ctl[@]}" dc devices dc-east --set - <<<"$devices_east" >>"$state/logs/ctl.log" 2>&1 ||
    { say "registering dc-east's fabric devices failed"; cat "$state/logs/ctl.log" >&2; exit 1; }
  for r in 1 2 3; do
    "${ctl[@]}" rack add dc-east "d1r$r" --cidr "10.1.$r.0/24" --cidr "fd00:1:$r::/64" \
      >>"$state/logs/ctl.log" 2>&1 || { cat "$state/logs/ctl.log" >&2; exit 1; }
  done
  for d in 1 2; do
    dcname=dc-east; ((d == 2)) && dcname=dc-west
    for r in 1 2 3; do for h in 1 2 3 4; do
      name="d${d}r${r}h$h"
      spawn ip netns exec "pm-$name" "$bin" agent --server "$url" --token "$agent_token" \
        --name "$name" --dc "$dcname" --address "10.$d.$r.$h" --address "fd00:$d:$r::$h" \
        "${agent_flags[@]}" >"$state/logs/$name.log" 2>&1 &
      pids+=($!)
      agents+=("$name:$!")
    done; done
  done
  what="2 DCs x 3 racks x 4 hosts in network namespaces (dc-east: switch mode, dc-west: rack mode)"
  try="export PINGMESH_SERVER=$url PINGMESH_ADMIN_TOKEN=\$(cat $state/admin-token)
                  $bin ctl status
                  $bin ctl pinglist d1r1h1
                  $bin ctl stop      # the kill switch; '$bin ctl resume' to restart
                  lab/lab.sh status; lab/lab.sh fault loss rack:d2r3 5; lab/lab.sh undo all
                  lab/lab.sh fault loss spine:d1s1 5   # a spine-layer alert, narrowed to
                                                       # spine:dc-east/d1s1 by traceroute
                  (a browser on another machine: ssh -L $port:$host:$port this-machine)"
else
  for d in 1 2; do for r in 1 2 3; do for s in 1 2 3 4; do
    name="dc$d-r$r-s$s"
    addr="127.10.$((10 * d + r)).$s"
    "$bin" agent --server "$url" --name "$name" --address "$addr" --listen-address "$addr" \
      "${agent_flags[@]}" >"$state/logs/$name.log" 2>&1 &
    pids+=($!)
    agents+=("$name:$!")
  done; done; done
  what="2 DCs x 3 racks x 4 servers on loopback addresses 127.10.x.y"
  try="$bin ctl --server $url status
                  $bin ctl --server $url pinglist dc1-r1-s1
                  $bin ctl --server $url stop      # the kill switch; 'resume' to restart"
fi

cat <<MSG

  pingmesh demo is running ($mode mode)
    UI and API:   $url/
    agents:       ${#agents[@]}: $what, probing every ${interval_ms} ms
    try:          $try
    logs:         $state/logs/
  Ctrl-C stops everything.

MSG

# The main loop: timers, and the server must stay up. Short sleeps keep Ctrl-C prompt.
t0=$SECONDS
fault_on=0
victim=""
while :; do
  sleep 1 & wait $! || true
  kill -0 "${pids[0]}" 2>/dev/null || { say "the server exited; see $state/logs/server.log"; exit 1; }
  el=$((SECONDS - t0))
  if ((fault_after > 0 && fault_on == 0 && el >= fault_after)); then
    fault_on=1
    if [[ $mode == lab ]]; then
      say "fault: 5 % loss on rack d1r2's uplinks (lab/lab.sh fault loss rack:d1r2 5); watch dc-east's rack matrix"
      nolock "$lab_sh" fault loss rack:d1r2 5 >>"$state/logs/lab.log" 2>&1 || say "fault failed, see $state/logs/lab.log"
    else
      victim="${agents[5]}"
      say "fault: stopping agent ${victim%%:*} (server down)"
      kill "${victim##*:}" 2>/dev/null || true
    fi
  fi
  if ((fault_on == 1 && fault_for > 0 && el >= fault_after + fault_for)); then
    fault_on=2
    if [[ $mode == lab ]]; then
      say "fault undone (lab/lab.sh undo all)"
      nolock "$lab_sh" undo all >>"$state/logs/lab.log" 2>&1 || true
    else
      name="${victim%%:*}"; addr="127.10.$((10 * ${name:2:1} + ${name:5:1})).${name:8:1}"
      say "fault undone: agent $name started again"
      "$bin" agent --server "$url" --name "$name" --address "$addr" --listen-address "$addr" \
        "${agent_flags[@]}" >>"$state/logs/$name.log" 2>&1 &
      pids+=($!)
    fi
  fi
  if ((run_for > 0 && el >= run_for)); then say "--run-for $run_for reached"; exit 0; fi
done
