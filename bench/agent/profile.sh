#!/usr/bin/env bash
# One tool at a time on the compare.sh test bed (lib.sh): 1,000 ICMP or TCP targets x 1 probe/s
# (TCP answered by a responder agent in the target namespace), by `pingmesh agent` or
# `fping -l`; after a 6 s warm-up, SECS s of either `perf record -g` (MODE=perf), `strace -c -f` (MODE=strace) or nothing (MODE=cpu), then CPU per probe from the
# tick counters (utime + stime) and from the exact scheduler runtime (/proc/PID/task/*/schedstat).
# Keeps its run directory (perf.data, strace.txt) under /tmp/pmb-profile.*.
#
# Usage: sudo bench/agent/profile.sh BINARY pingmesh-icmp|pingmesh-tcp|fping perf|strace|cpu [SECS=10]
# Env:   AGENT_ARGS="--slot-ms 5"  extra flags for the probing agent
# Bounded: holds the agent bench lock; the tool runs 6 + SECS s; both namespaces deleted on exit.
set -euo pipefail
if [[ -z ${PMB_LOCKED:-} ]]; then exec env PMB_LOCKED=1 timeout 300 flock -w 300 /tmp/pingmesh-agentbench.lock "$0" "$@"; fi
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "$1"); tool=$2; mode=$3; secs=${4:-10}
N=1000; RATE=1000
source "$here/lib.sh"
dir=$(mktemp -d /tmp/pmb-profile.XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pmb_down; }
trap cleanup EXIT
pmb_up $N
mkdir -p $dir/pl
ip netns exec $PMB_SRC python3 $here/stub_server.py $dir/pl 127.0.0.1 19100 & pids+=($!)
proto=icmp; port=0; field=1
if [[ $tool == pingmesh-tcp ]]; then  # TCP targets: a responder agent answers on every address
  proto=tcp; port=9001; field=2
  ip netns exec $PMB_DST $bin agent --name responder --server http://127.0.0.1:1 --address 10.78.0.2 \
    --tcp-port 9001 --udp-port 9001 --http-port 9002 --responder-max-connections 8192 \
    --log-level error >$dir/responder.log 2>&1 & pids+=($!)
fi
sleep 3
awk -v n=$N 'BEGIN{for(i=0;i<n;i++) printf "10.77.%d.%d\n", int(i/250), i%250+1}' >"$dir/targets"
if [[ $tool == fping ]]; then
  ip netns exec $PMB_SRC fping -l -q -p 1000 -i 0.8 -f $dir/targets >$dir/fping.log 2>&1 & tp=$!
else
  awk -v n=$N -v proto=$proto -v port=$port 'BEGIN{print "<Pinglist format=\"1\" server=\"bench\" dc=\"b\" rack=\"r0\" version=\"00000000000000a1\" stopped=\"false\">"; for(i=0;i<n;i++) printf "  <Peer name=\"t%d\" addr=\"10.77.%d.%d\" proto=\"%s\" port=\"%d\" interval_ms=\"1000\" payload=\"0\" dscp=\"0\" level=\"intra-dc\" dc=\"b\" rack=\"r%d\"/>\n", i, int(i/250), i%250+1, proto, port, int(i/250); print "</Pinglist>"}' > $dir/pl/bench
  ip netns exec $PMB_SRC $bin agent --name bench --server http://127.0.0.1:19100 --listen-address 10.78.0.1 --address 10.78.0.1 \
    --tcp-port 19101 --udp-port 19101 --http-port 19102 --lab-min-interval-ms 100 --max-rate 100000 --max-inflight 100000 --log-level warn ${AGENT_ARGS:-} >$dir/agent.log 2>&1 & tp=$!
fi
pids+=($tp)
sleep 6
c0=$(pmb_cpu_ticks $tp); s0=$(cat /proc/$tp/task/*/schedstat | awk '{s+=$1} END{print s}'); n0=$(pmb_counts | cut -d" " -f$field)
case $mode in
  perf) perf record -e cpu-clock -F 4000 -g -o $dir/perf.data -p $tp -- sleep $secs 2>/dev/null >/dev/null ;;
  strace) timeout $((secs+2)) strace -c -f -p $tp -o $dir/strace.txt & sp=$!; sleep $secs; kill -INT $sp; wait $sp || true ;;
  *) sleep $secs ;;
esac
c1=$(pmb_cpu_ticks $tp); s1=$(cat /proc/$tp/task/*/schedstat | awk '{s+=$1} END{print s}'); n1=$(pmb_counts | cut -d" " -f$field)
echo "tool=$tool probes=$((n1-n0)) tick_us_per_probe=$(echo "($c1-$c0)*10000/($n1-$n0)" | bc -l | cut -c1-6) sched_us_per_probe=$(echo "($s1-$s0)/1000/($n1-$n0)" | bc -l | cut -c1-6) dir=$dir"
