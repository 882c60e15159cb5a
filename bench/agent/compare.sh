#!/usr/bin/env bash
# Side-by-side cost of probing: pingmesh agent vs fping, prometheus-blackbox-exporter and
# prometheus-smokeping-prober, in ONE run on the same targets (N addresses in a namespace, see
# lib.sh). For each tool and repetition: start it, let it settle (WARMUP s), then over WINDOW s
# take its CPU (utime + stime from /proc/PID/stat, all threads) and the probes that reached the
# targets (counted in the target namespace, the same way for every tool); RSS at the end.
# Then pingmesh with BIG targets (RSS at 5,000 peers). Prints every sample and a summary of
# medians and ratios; writes both to OUT (default bench/agent/compare-results.txt).
#
# Usage: sudo bench/agent/compare.sh [PINGMESH_BINARY]
# Env:   N=1000 REPS=3 WINDOW=20 WARMUP=6 BIG=5000 RATE=1000 (probes/s for every tool)
#        TOOLS="pingmesh-icmp fping smokeping-icmp blackbox-icmp pingmesh-tcp blackbox-tcp"
#        CURLS=8 (parallel scrapers driving blackbox_exporter)
# Needs root (namespaces), fping, prometheus-blackbox-exporter, prometheus-smokeping-prober, curl.
# Bounded: every tool runs WARMUP + WINDOW s; the whole run is capped by `timeout` at 40 min.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-build/src/cmd/pingmesh}")
N=${N:-1000}
REPS=${REPS:-3}
WINDOW=${WINDOW:-20}
WARMUP=${WARMUP:-6}
BIG=${BIG:-5000}
RATE=${RATE:-1000}
CURLS=${CURLS:-8}
TOOLS=${TOOLS:-"pingmesh-icmp fping smokeping-icmp blackbox-icmp pingmesh-tcp blackbox-tcp"}
OUT=${OUT:-$here/compare-results.txt}
# shellcheck source=lib.sh
source "$here/lib.sh"

if [[ -z ${PMB_LOCKED:-} ]]; then
  exec env PMB_LOCKED=1 timeout 2400 flock -w 900 "$PMB_LOCK" "$0" "$@"
fi
[[ $(id -u) == 0 ]] || { echo "compare.sh: needs root (network namespaces)" >&2; exit 2; }
for t in fping prometheus-blackbox-exporter prometheus-smokeping-prober curl python3; do
  command -v $t >/dev/null || { echo "compare.sh: $t missing (scripts/install-deps.sh)" >&2; exit 2; }
done
[[ -x $bin ]] || { echo "compare.sh: no pingmesh binary at $bin" >&2; exit 2; }

dir=$(mktemp -d /tmp/pmb-compare.XXXXXX)
pids=()
tool_pid=
cleanup() {
  for p in "${pids[@]}" $tool_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pmb_down
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

max=$((N > BIG ? N : BIG))
echo "compare: $max target addresses in $PMB_DST, $N targets per tool at $RATE probes/s total"
pmb_up "$max"
mkdir -p "$dir/pl"
# The controller + collector stand-in for the probing agent, and the responder agent.
ip netns exec "$PMB_SRC" python3 "$here/stub_server.py" "$dir/pl" 127.0.0.1 19100 & pids+=($!)
ip netns exec "$PMB_DST" "$bin" agent --name responder --server http://127.0.0.1:1 --address 10.78.0.2 \
  --tcp-port 9001 --udp-port 9001 --http-port 9002 --responder-max-connections 8192 \
  --log-level error >"$dir/responder.log" 2>&1 & pids+=($!)
sleep 1
for ((i = 0; i < N; i++)); do pmb_addr "$i"; done >"$dir/targets"
interval_ms=$((N * 1000 / RATE))

cat >"$dir/blackbox.yml" <<EOF
modules:
  tcp_connect:
    prober: tcp
    timeout: 5s
  icmp:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
EOF
# Scraper URL lists: CURLS serial curl processes, each at RATE/CURLS requests/s, long enough for
# WARMUP + WINDOW + 10 s.
make_urls() {  # module port (awk: bash loops took minutes on a loaded machine)
  local module=$1 port=$2 k
  for ((k = 0; k < CURLS; k++)); do
    awk -v per=$((RATE / CURLS)) -v total=$(((WARMUP + WINDOW + 10) * (RATE / CURLS))) \
      -v curls="$CURLS" -v k="$k" -v n="$N" -v module="$module" -v port="$port" 'BEGIN {
        for (j = 0; j < total; j++) {
          i = (j * curls + k) % n
          addr = sprintf("10.77.%d.%d", int(i / 250), i % 250 + 1)
          printf "url = \"http://127.0.0.1:9115/probe?module=%s&target=%s%s\"\n", module, addr,
            (port == 0 ? "" : ":" port)
        }
      }' >"$dir/urls-$module-$k"
  done
}
[[ " $TOOLS " == *" blackbox-tcp "* ]] && make_urls tcp_connect 9001
[[ " $TOOLS " == *" blackbox-icmp "* ]] && make_urls icmp 0

agent_flags=(--server http://127.0.0.1:19100 --listen-address 10.78.0.1 --address 10.78.0.1
  --tcp-port 19101 --udp-port 19101 --http-port 19102 --lab-min-interval-ms 100
  --max-rate 100000 --max-inflight 100000 --log-level warn)

scrapers=()
start_tool() {  # tool -> sets tool_pid
  local tool=$1
  case $tool in
    pingmesh-icmp | pingmesh-tcp | pingmesh-udp)
      local proto=${tool#pingmesh-} port=9001
      [[ $proto == icmp ]] && port=0
      pmb_pinglist "$dir/pl/bench" bench "$proto" "$port" "$N" "$interval_ms"
      ip netns exec "$PMB_SRC" "$bin" agent --name bench "${agent_flags[@]}" >"$dir/$tool.log" 2>&1 &
      tool_pid=$!
      ;;
    pingmesh-big-icmp | pingmesh-big-tcp)
      local proto=${tool#pingmesh-big-} port=9001
      [[ $proto == icmp ]] && port=0
      pmb_pinglist "$dir/pl/bench" bench "$proto" "$port" "$BIG" $((BIG * 1000 / RATE))
      ip netns exec "$PMB_SRC" "$bin" agent --name bench "${agent_flags[@]}" >"$dir/$tool.log" 2>&1 &
      tool_pid=$!
      ;;
    fping)
      # -p: period per target; -i: minimum gap between any two sends, a little below 1/RATE so the
      # per-target period is what paces fping (fping 5 takes fractional ms).
      ip netns exec "$PMB_SRC" fping -l -q -p "$interval_ms" -i "$(awk -v r="$RATE" 'BEGIN {printf "%.3f", 1000 / r * 0.8}')" \
        -f "$dir/targets" >"$dir/fping.log" 2>&1 &
      tool_pid=$!
      ;;
    smokeping-icmp)
      ip netns exec "$PMB_SRC" prometheus-smokeping-prober --privileged --web.listen-address=127.0.0.1:9374 \
        --ping.interval="${interval_ms}ms" $(cat "$dir/targets") >"$dir/smokeping.log" 2>&1 &
      tool_pid=$!
      ;;
    blackbox-icmp | blackbox-tcp)
      local module=icmp
      [[ $tool == blackbox-tcp ]] && module=tcp_connect
      ip netns exec "$PMB_SRC" prometheus-blackbox-exporter --config.file="$dir/blackbox.yml" \
        --web.listen-address=127.0.0.1:9115 --log.level=warn >"$dir/blackbox.log" 2>&1 &
      tool_pid=$!
      sleep 1
      local k
      scrapers=()
      for ((k = 0; k < CURLS; k++)); do
        ip netns exec "$PMB_SRC" curl -s --rate "$((RATE / CURLS))/s" -K "$dir/urls-$module-$k" >/dev/null 2>&1 &
        scrapers+=($!)
      done
      ;;
    *) echo "compare.sh: unknown tool $tool" >&2; exit 2 ;;
  esac
}

stop_tool() {
  local p
  for p in "${scrapers[@]}"; do kill "$p" 2>/dev/null || true; done
  scrapers=()
  kill "$tool_pid" 2>/dev/null || true
  wait "$tool_pid" 2>/dev/null || true
  tool_pid=
  sleep 1
}

# What a tool probes: the counter column of pmb_counts (1 = ICMP, 2 = TCP).
column_of() { case $1 in *tcp*) echo 2 ;; *udp*) echo 3 ;; *) echo 1 ;; esac; }

ticks=$(getconf CLK_TCK)
: >"$OUT.samples"
measure() {  # rep tool
  local rep=$1 tool=$2 col c0 c1 n0 n1 t0 t1 rss extra=""
  col=$(column_of "$tool")
  start_tool "$tool"
  local settle=$WARMUP
  [[ $tool == pingmesh-big-* ]] && settle=$((WARMUP + BIG * 1000 / RATE / 1000))
  sleep "$settle"
  if ! kill -0 "$tool_pid" 2>/dev/null; then
    echo "compare.sh: $tool died; its log:" >&2
    tail -5 "$dir"/*.log >&2
    exit 1
  fi
  c0=$(pmb_cpu_ticks "$tool_pid")
  n0=$(pmb_counts | cut -d' ' -f"$col")
  t0=$(date +%s.%N)
  sleep "$WINDOW"
  c1=$(pmb_cpu_ticks "$tool_pid")
  n1=$(pmb_counts | cut -d' ' -f"$col")
  t1=$(date +%s.%N)
  rss=$(pmb_rss_kb "$tool_pid")
  if [[ $tool == pingmesh-* ]]; then
    local m
    m=$(pmb_src curl -s --max-time 5 http://10.78.0.1:19102/metrics || true)
    extra="ok=$(pmb_metric_sum 'outcome="ok"' <<<"$m") not_ok=$(pmb_metric_sum '^pingmesh_agent_probes_total.*outcome="(timeout|drop|error|refused)"' <<<"$m")"
  fi
  stop_tool
  awk -v rep="$rep" -v tool="$tool" -v c=$((c1 - c0)) -v hz="$ticks" -v n=$((n1 - n0)) \
    -v t="$(echo "$t1 - $t0" | bc)" -v rss="$rss" -v extra="$extra" 'BEGIN {
      printf "rep=%d tool=%s probes=%d secs=%.1f rate=%.0f cpu_s=%.2f us_per_probe=%.1f rss_kb=%d %s\n",
        rep, tool, n, t, n / t, c / hz, (n > 0 ? c / hz * 1e6 / n : 0), rss, extra }' |
    tee -a "$OUT.samples"
}

echo "compare: $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); REPS=$REPS WINDOW=$WINDOW s"
read -r -a tools <<<"$TOOLS"
for ((rep = 1; rep <= REPS; rep++)); do
  # Rotate the order every repetition so no tool always runs in the same slot of the noise.
  for ((j = 0; j < ${#tools[@]}; j++)); do
    measure "$rep" "${tools[$(((j + rep - 1) % ${#tools[@]}))]}"
  done
done
if ((BIG > 0)); then
  measure 1 pingmesh-big-icmp
  measure 1 pingmesh-big-tcp
fi

python3 - "$OUT.samples" "$N" "$BIG" <<'EOF' | tee "$OUT"
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    rows.setdefault(kv["tool"], []).append(kv)
def med(tool, key):
    v = [float(r[key]) for r in rows.get(tool, [])]
    return statistics.median(v) if v else float("nan")
print(f"{'tool':18} {'reps':>4} {'probes/s':>9} {'CPU us/probe (median)':>22} {'min..max':>15} {'RSS MB':>7}")
for tool, rs in rows.items():
    us = [float(r["us_per_probe"]) for r in rs]
    print(f"{tool:18} {len(rs):4d} {med(tool,'rate'):9.0f} {statistics.median(us):22.1f} "
          f"{min(us):7.1f}..{max(us):<7.1f} {med(tool,'rss_kb')/1024:7.1f}")
def ratio(a, b):
    x, y = med(a, "us_per_probe"), med(b, "us_per_probe")
    if x == x and y == y and y > 0:
        print(f"ratio {a} / {b} = {x / y:.3f}  ({x:.1f} / {y:.1f} us per probe)")
ratio("pingmesh-tcp", "blackbox-tcp")
ratio("pingmesh-icmp", "fping")
ratio("pingmesh-icmp", "blackbox-icmp")
ratio("pingmesh-icmp", "smokeping-icmp")
print("targets: pingmesh-tcp / blackbox-tcp <= 0.083; pingmesh-icmp / fping <= 0.5; "
      f"RSS <= 15 MB at {sys.argv[2]} peers, <= 30 MB at {sys.argv[3]} (pingmesh-big-*)")
EOF
