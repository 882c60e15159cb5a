#!/usr/bin/env bash
# End-to-end ingest benchmark, pingmesh collector vs VictoriaMetrics, in one run on this machine:
# both get the same probe results over HTTP on loopback from the same load generator (a separate
# process): the collector as snappy protobuf ResultBatches (POST /api/v1/results, acknowledged
# once the WAL is fdatasync'ed), VictoriaMetrics (Debian's /usr/bin/victoria-metrics, started here
# with a temporary -storageDataPath) as Prometheus remote-write samples (POST /api/v1/write, one
# sample per result, one series per source, target and protocol).
#
# Each server: a warm-up run (not measured: the collector creates its pair cells, VictoriaMetrics
# registers its series), then a measured run; server CPU from /proc/PID/stat (utime + stime)
# over the measured run, plus, for the collector, the flush of the windows to SQLite afterwards
# (waits until no window is open). Prints one JSON line per server and the ratios.
#
#   bench/collector/compare.sh [build-dir] [seconds] [rounds]
#   env: CONNECTIONS (8), THREADS (collector --threads, 8), AGENTS (1000), PEERS (2500), WARMUP (5),
#        SKIP_FLUSH=1, SKIP_VM=1
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
seconds=${2:-20}
rounds=${3:-2}
conns=${CONNECTIONS:-8}
threads=${THREADS:-8}
agents=${AGENTS:-1000}
peers=${PEERS:-2500}
warmup=${WARMUP:-5}
pingmesh_bin=$build/src/cmd/pingmesh
loadgen=$build/bench/collector/collector_loadgen
vm_bin=/usr/bin/victoria-metrics
for f in "$pingmesh_bin" "$loadgen"; do
  [[ -x $f ]] || { echo "compare.sh: $f missing (ninja -C $build pingmesh collector_loadgen)" >&2; exit 2; }
done
tmp=$(mktemp -d /tmp/pingmesh-compare.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "compare.sh: $1 did not come up" >&2; exit 1
}
loadgen_args=(--agents "$agents" --peers "$peers" --rounds "$rounds" --connections "$conns")
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); seconds=$seconds rounds=$rounds connections=$conns threads=$threads agents=$agents peers=$peers" >&2

# --- pingmesh collector ---------------------------------------------------------------------
port=$(free_port)
"$pingmesh_bin" collector --listen "127.0.0.1:$port" --data-dir "$tmp/collector" --token t \
  --grace 60 --threads "$threads" --log-level warn &
pid=$!
pids+=("$pid")
wait_http "http://127.0.0.1:$port/healthz"
"$loadgen" --target pingmesh --port "$port" --token t --seconds "$warmup" "${loadgen_args[@]}" >/dev/null
c0=$(cpu "$pid")
pm=$("$loadgen" --target pingmesh --port "$port" --token t --seconds "$seconds" "${loadgen_args[@]}")
c1=$(cpu "$pid")
flush_s=0
if [[ -z ${SKIP_FLUSH:-} ]]; then
  t0=$(date +%s.%N)
  for _ in $(seq 240); do  # until every window is stored (grace 60 s)
    open=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^pingmesh_collector_windows_open /{print $2}')
    [[ ${open:-1} == 0 ]] && break
    sleep 1
  done
  flush_s=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
fi
c2=$(cpu "$pid")
fsyncs=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^pingmesh_collector_wal_fsync_seconds_count /{print $2}')
kill "$pid"; wait "$pid" 2>/dev/null || true
pm_line=$(python3 - "$pm" "$c0" "$c1" "$c2" "$ticks" "$flush_s" "$fsyncs" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); c0, c1, c2, hz = map(float, sys.argv[2:6])
n = r["results"]
r["server_cpu_s"] = round((c1 - c0) / hz, 2)
r["server_cpu_us_per_result"] = round((c1 - c0) / hz / n * 1e6, 4) if n else None
r["server_cpu_with_flush_us_per_result"] = round((c2 - c0) / hz / n * 1e6, 4) if n else None
r["flush_wait_s"] = float(sys.argv[6]); r["wal_fsyncs"] = float(sys.argv[7] or 0)
print(json.dumps(r))
EOF
)
echo "$pm_line"

# --- VictoriaMetrics -------------------------------------------------------------------------
if [[ -z ${SKIP_VM:-} && -x $vm_bin ]]; then
  vport=$(free_port)
  "$vm_bin" -storageDataPath "$tmp/vm" -httpListenAddr "127.0.0.1:$vport" -loggerLevel ERROR \
    >"$tmp/vm.log" 2>&1 &
  vpid=$!
  pids+=("$vpid")
  wait_http "http://127.0.0.1:$vport/health"
  "$loadgen" --target vm --port "$vport" --seconds "$warmup" "${loadgen_args[@]}" >/dev/null
  rows0=$(curl -fs "http://127.0.0.1:$vport/metrics" | awk '/^vm_rows_inserted_total\{type="promremotewrite"\}/{print $2}')
  v0=$(cpu "$vpid")
  vm=$("$loadgen" --target vm --port "$vport" --seconds "$seconds" "${loadgen_args[@]}")
  v1=$(cpu "$vpid")
  rows1=$(curl -fs "http://127.0.0.1:$vport/metrics" | awk '/^vm_rows_inserted_total\{type="promremotewrite"\}/{print $2}')
  kill "$vpid"; wait "$vpid" 2>/dev/null || true
  vm_line=$(python3 - "$vm" "$v0" "$v1" "$ticks" "${rows0:-0}" "${rows1:-0}" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); v0, v1, hz, r0, r1 = map(float, sys.argv[2:7])
n = r["results"]
r["server_cpu_s"] = round((v1 - v0) / hz, 2)
r["server_cpu_us_per_result"] = round((v1 - v0) / hz / n * 1e6, 4) if n else None
r["vm_rows_inserted"] = r1 - r0
print(json.dumps(r))
EOF
)
  echo "$vm_line"
  python3 - "$pm_line" "$vm_line" <<'EOF'
import json, sys
p, v = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
  "ratio_results_per_s_pingmesh_over_vm": round(p["results_per_s"] / v["results_per_s"], 2),
  "ratio_cpu_per_result_pingmesh_over_vm": round(p["server_cpu_us_per_result"] / v["server_cpu_us_per_result"], 2),
  "ratio_cpu_with_flush_pingmesh_over_vm": round(p["server_cpu_with_flush_us_per_result"] / v["server_cpu_us_per_result"], 2),
}))
EOF
fi
