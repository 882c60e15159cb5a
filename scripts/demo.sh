#!/usr/bin/env bash
# The README's main command: installs what is missing, builds (server, agents, web UI), starts
# `pingmesh server` on its embedded SQLite store at http://127.0.0.1:9000 and a loopback mesh of
# agents (2 DCs x 3 racks x 4 servers, each agent on its own 127.x.y.z address), and keeps
# running until Ctrl-C, which stops everything.
#
#   scripts/demo.sh [--port 9000] [--interval-ms 2000] [--fault-after-s N]
#
# --fault-after-s N: after N seconds, stop one agent (a "server down") so its row and column
# go white in the UI and an alert fires; Ctrl-C ends the demo.
# State lives in .demo/ (database, collector data, logs); delete it to start afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
port=9000
interval_ms=2000
fault_after=0
while (($#)); do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --interval-ms) interval_ms="$2"; shift 2 ;;
    --fault-after-s) fault_after="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh build
scripts/build.sh release pingmesh
bin="$PWD/build/src/cmd/pingmesh"
state="$PWD/.demo"
mkdir -p "$state/logs"

if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
  echo "demo: something already answers on 127.0.0.1:$port; stop it or use --port" >&2
  exit 1
fi

# Topology: rack mode, servers dcD-rR-sS at 127.10.(10*D+R).S; every protocol; short intervals
# (a lab override: the production floor is 10 s per pair).
topo="$state/topology.json"
{
  echo '{"dcs":['
  for d in 1 2; do
    [[ $d == 2 ]] && echo ','
    echo "{\"name\":\"dc$d\",\"mode\":\"rack\",\"interval_ms\":$interval_ms,\"inter_dc_servers\":3,"
    echo '"probes":[{"protocol":"tcp","port":9001},{"protocol":"udp","port":9001},{"protocol":"icmp"},{"protocol":"http","port":9002}]}'
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

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping ${#pids[@]} processes"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo: stopped (state kept in $state)"
}
trap stop_all INT TERM EXIT

"$bin" server --listen "127.0.0.1:$port" --db "$state/pingmesh.db" --data-dir "$state/data" \
  --min-interval-ms 1000 --import "$topo" >"$state/logs/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$state/logs/server.log" >&2; exit 1; }
  sleep 0.1
done

agents=()
for d in 1 2; do for r in 1 2 3; do for s in 1 2 3 4; do
  name="dc$d-r$r-s$s"
  addr="127.10.$((10 * d + r)).$s"
  "$bin" agent --server "http://127.0.0.1:$port" --name "$name" --address "$addr" \
    --listen-address "$addr" --lab-min-interval-ms 1000 --heartbeat-interval-ms 2000 \
    --pull-interval-ms 2000 --batch-interval-ms 2000 >"$state/logs/$name.log" 2>&1 &
  pids+=($!)
  agents+=("$name:$!")
done; done; done

cat <<MSG

  pingmesh demo is running
    UI and API:   http://127.0.0.1:$port/
    agents:       ${#agents[@]} (2 DCs x 3 racks x 4 servers on 127.10.x.y), probing every ${interval_ms} ms
    try:          $bin ctl status
                  $bin ctl pinglist dc1-r1-s1
                  $bin ctl stop      # the kill switch; '$bin ctl resume' to restart
    logs:         $state/logs/
  Ctrl-C stops everything.

MSG

if ((fault_after > 0)); then
  sleep "$fault_after"
  victim="${agents[5]}"
  echo "demo: fault: stopping agent ${victim%%:*} (server down)"
  kill "${victim##*:}" 2>/dev/null || true
fi
wait "${pids[0]}"
