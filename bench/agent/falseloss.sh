#!/usr/bin/env bash
# False loss at 0 % injected loss: one pingmesh agent probes N targets (lib.sh's namespaces) over
# every protocol in PROTOS at 1 probe/s each (lab-only interval override) for SECS seconds, and
# counts outcomes per protocol from its /metrics. Target: zero losses.
#
# Usage: sudo bench/agent/falseloss.sh [PINGMESH_BINARY]
# Env:   N=1000 SECS=300 PROTOS="icmp tcp udp"
# Bounded: N x |PROTOS| probes/s for SECS s (900,000 probes by default); capped by `timeout`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-build/src/cmd/pingmesh}")
N=${N:-1000}
SECS=${SECS:-300}
PROTOS=${PROTOS:-"icmp tcp udp"}
# shellcheck source=lib.sh
source "$here/lib.sh"
if [[ -z ${PMB_LOCKED:-} ]]; then
  exec env PMB_LOCKED=1 timeout $((SECS + 900 + 120)) flock -w 900 "$PMB_LOCK" "$0" "$@"
fi
[[ $(id -u) == 0 ]] || { echo "falseloss.sh: needs root (network namespaces)" >&2; exit 2; }
dir=$(mktemp -d /tmp/pmb-falseloss.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pmb_down
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pmb_up "$N"
mkdir -p "$dir/pl"
read -r -a protos <<<"$PROTOS"
pmb_pinglist_multi "$dir/pl/bench" bench "$N" 1000 "${protos[@]}"
ip netns exec "$PMB_SRC" python3 "$here/stub_server.py" "$dir/pl" 127.0.0.1 19100 & pids+=($!)
ip netns exec "$PMB_DST" "$bin" agent --name responder --server http://127.0.0.1:1 \
  --address 10.78.0.2 --tcp-port 9001 --udp-port 9001 --http-port 9002 \
  --responder-max-connections 8192 --log-level error >"$dir/responder.log" 2>&1 & pids+=($!)
sleep 1
ip netns exec "$PMB_SRC" "$bin" agent --name bench --server http://127.0.0.1:19100 \
  --listen-address 10.78.0.1 --address 10.78.0.1 --tcp-port 19101 --udp-port 19101 \
  --http-port 19102 --lab-min-interval-ms 1000 --max-rate 100000 --max-inflight 100000 \
  --log-level warn >"$dir/agent.log" 2>&1 & pids+=($!)
metrics() { ip netns exec "$PMB_SRC" curl -s --max-time 5 http://10.78.0.1:19102/metrics; }
sleep 3
m0=$(metrics)
echo "falseloss: $(date -u +%FT%TZ) N=$N protocols=$PROTOS at 1 probe/s each for $SECS s"
sleep "$SECS"
m1=$(metrics)
total_loss=0
for p in "${protos[@]}"; do
  line="protocol=$p"
  for o in ok timeout drop refused error; do
    re="^pingmesh_agent_probes_total.*protocol=\"$p\".*outcome=\"$o\""
    d=$(($(pmb_metric_sum "$re" <<<"$m1") - $(pmb_metric_sum "$re" <<<"$m0")))
    line+=" $o=$d"
    [[ $o != ok ]] && total_loss=$((total_loss + d))
  done
  echo "$line"
done
echo "limit_hits: $(grep -E '^pingmesh_agent_limit_hits_total' <<<"$m1" | tr '\n' ' ')"
echo "false_losses_total=$total_loss (target 0)"
