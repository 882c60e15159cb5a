#!/usr/bin/env bash
# CPU per probe of one agent on loopback: N targets (distinct names, all answered on 127.0.0.x by
# the agent's own responders or the kernel) at INTERVAL_MS each, for SECONDS seconds.
# Usage: bench/agent/loopback_cpu.sh [PINGMESH_BINARY] ; env N, PROTO (tcp|udp|icmp), INTERVAL_MS,
# SECONDS. Prints probes, CPU seconds, microseconds of CPU per probe and RSS.
set -euo pipefail
bin="${1:-build/src/cmd/pingmesh}"
n="${N:-1000}"; proto="${PROTO:-tcp}"; interval="${INTERVAL_MS:-1000}"; secs="${SECONDS_RUN:-20}"
dir=$(mktemp -d); trap 'kill $ctl $agent 2>/dev/null || true; rm -rf "$dir"' EXIT
addr=127.0.0.30; port=19101; [[ $proto == icmp ]] && port=0
{
  echo '<Pinglist format="1" server="bench" dc="d" rack="r" version="0000000000000001" stopped="false">'
  for i in $(seq 1 "$n"); do
    echo "  <Peer name=\"t$i\" addr=\"$addr\" proto=\"$proto\" port=\"$port\" interval_ms=\"$interval\" payload=\"0\" dscp=\"0\" level=\"intra-rack\" dc=\"d\" rack=\"r\"/>"
  done
  echo '</Pinglist>'
} > "$dir/pinglist"
mkdir -p "$dir/api/v1/pinglist" && cp "$dir/pinglist" "$dir/api/v1/pinglist/bench"
# A static file server is enough for the pull (heartbeat and results get 501: counted, ignored).
(cd "$dir" && exec python3 -m http.server 19100 --bind 127.0.0.1 >/dev/null 2>&1) & ctl=$!
sleep 0.5
"$bin" agent --name bench --listen-address $addr --address $addr --tcp-port 19101 --udp-port 19101 \
  --http-port 19102 --server http://127.0.0.1:19100 --lab-min-interval-ms 100 --max-rate 100000 \
  --log-level warn >/dev/null 2>&1 & agent=$!
sleep 3  # first pull, phases spread over one interval
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$agent/stat; }
probes() { curl -s http://$addr:19102/metrics | awk '/^pingmesh_agent_probes_total/ {s+=$2} END {print s+0}'; }
c0=$(cpu); p0=$(probes); sleep "$secs"; c1=$(cpu); p1=$(probes)
rss=$(awk '/VmRSS/ {print $2}' /proc/$agent/status)
awk -v c=$((c1 - c0)) -v t="$ticks" -v p=$((p1 - p0)) -v r="$rss" -v proto="$proto" 'BEGIN {
  printf "proto=%s probes=%d cpu_s=%.2f cpu_us_per_probe=%.1f rss_kb=%d\n", proto, p, c/t, (c/t)*1e6/(p>0?p:1), r }'
curl -s http://$addr:19102/metrics | grep -E '^pingmesh_agent_probes_total' | grep -v ' 0$'
