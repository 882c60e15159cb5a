#!/usr/bin/env bash
# Lab self-tests: builds a 2 DC x 2 rack x 2 host lab and checks reachability (IPv4 and IPv6),
# ECMP spreading, injected loss and delay against measurements, black holes, link faults and
# their undo, and that teardown (also after a "crash") leaves nothing behind.
# Needs root and network namespaces; prints "SKIPPED: <reason>" and exits 0 otherwise.
# Every load is bounded in count and time; the whole run is capped at 170 s.
# Env: PMLAB_TEST_TAKEOVER=1 (or CI=true) replaces a lab that is already up.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lab="$here/../lab.sh"

if [[ -z "${PMLAB_TEST_INNER:-}" ]]; then
  export PMLAB_TEST_INNER=1
  exec timeout -k 10 170 "${BASH_SOURCE[0]}" "$@"
fi

skip() { echo "SKIPPED: $*"; exit 0; }
[[ $(id -u) -eq 0 ]] || skip "lab tests need root"
for t in ip nft iptables ip6tables ping timeout cmake; do
  command -v "$t" >/dev/null || skip "missing $t (scripts/install-deps.sh test)"
done
ip netns add pm-test-rights 2>/dev/null || skip "no rights to create network namespaces"
ip netns del pm-test-rights
if ip netns list | grep -q '^pm-' && [[ "${CI:-}" != "true" && -z "${PMLAB_TEST_TAKEOVER:-}" ]]; then
  skip "a lab is already up on this machine (lab/lab.sh down, or PMLAB_TEST_TAKEOVER=1)"
fi

export PMLAB_RUN_DIR="${PMLAB_RUN_DIR:-$(mktemp -d /tmp/pmlab-test.XXXXXX)}"
fails=0
pass() { echo "PASS $1: $2"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
x() { ip netns exec "pm-$1" "${@:2}"; }
# ping_loss HOST DST COUNT: percent lost of what was sent (ping -f keeps sending until COUNT
# replies or the deadline).
ping_loss() {
  x "$1" ping -n -q -f -c "$3" -w 30 "$2" 2>/dev/null |
    awk '/packets transmitted/ {printf "%.3f %d %d\n", ($1-$4)*100/$1, $1, $1-$4}'
}
# rtt_median_us HOST DST: median of 200 echo RTTs 5 ms apart, microseconds.
rtt_median_us() {
  x "$1" ping -n -c 200 -i 0.005 -W 1 "$2" 2>/dev/null | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' |
    sort -n | awk '{a[NR]=$1} END {if (NR==0) print -1; else printf "%d\n", a[int((NR+1)/2)]*1000}'
}
in_range() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN {exit !(v >= lo && v <= hi)}'; }
gc_before=$(sysctl -n net.ipv4.neigh.default.gc_thresh3)

cleanup() { "$lab" down >/dev/null 2>&1 || true; rm -rf "$PMLAB_RUN_DIR"; }
trap cleanup EXIT
"$lab" down >/dev/null 2>&1 || true

# --- up, idempotent -------------------------------------------------------------------------
t0=$(date +%s.%N)
"$lab" up "$here/../topologies/small.json" 2>/dev/null
t1=$(date +%s.%N)
if "$lab" up "$here/../topologies/small.json" 2>&1 | grep -q "already up"; then
  pass up "built in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s; second up is a no-op"
else
  fail up "second up was not a no-op"
fi
n_hosts=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["hosts"]))' \
  "$PMLAB_RUN_DIR/hosts.json")
[[ "$n_hosts" == 8 ]] && pass hosts_json "8 hosts described" || fail hosts_json "$n_hosts hosts"
# The fabric devices the API takes (spines and ToRs, every non-link-local port address).
devs=$("$lab" devices 1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(
  x["name"] + ":" + x["layer"] + ":" + str(len(x["addresses"])) for x in d))' 2>&1) || true
[[ "$devs" == "d1r1t:tor:5 d1r2t:tor:5 d1s1:spine:6 d1s2:spine:6" ]] &&
  pass devices "dc1: $devs" || fail devices "dc1: $devs"

# --- reachability ---------------------------------------------------------------------------
if out=$("$lab" check); then pass reachability "$out"; else fail reachability "$out"; fi
if ping -n -q -c1 -W2 10.2.2.2 >/dev/null && ping -n -q -c1 -W2 fd00:2:2::2 >/dev/null; then
  pass server_attach "root namespace reaches a DC2 host over IPv4 and IPv6"
else
  fail server_attach "root namespace cannot reach 10.2.2.2 / fd00:2:2::2"
fi

# --- ECMP: route choice and real traffic ----------------------------------------------------
paths4=$(for s in $(seq 20000 20063); do
  x d1r1t ip route get 10.2.1.1 sport "$s" dport 9001 ipproto tcp; done |
  grep -o 'dev s[0-9]*' | sort | uniq -c | wc -l)
paths6=$(for s in $(seq 20000 20063); do
  x d1r1t ip -6 route get fd00:2:1::1 sport "$s" dport 9001 ipproto tcp; done |
  grep -o 'dev s[0-9]*' | sort | uniq -c | wc -l)
same=$(for i in 1 2 3 4 5; do
  x d1r1t ip route get 10.2.1.1 sport 33333 dport 9001 ipproto tcp; done | grep -o 'dev s[0-9]*' | sort -u | wc -l)
rx() { x "$1" cat /sys/class/net/r1/statistics/rx_packets; }
a1=$(rx d1s1); b1=$(rx d1s2)
x d1r1h1 bash -c 'for i in $(seq 64); do echo x > /dev/udp/10.1.2.1/9; done' 2>/dev/null || true
a2=$(rx d1s1); b2=$(rx d1s2)
if [[ $paths4 -ge 2 && $paths6 -ge 2 && $same == 1 && $((a2 - a1)) -ge 8 && $((b2 - b1)) -ge 8 ]]; then
  pass ecmp "64 source ports use $paths4 (IPv4) / $paths6 (IPv6) spines, one port one path; 64 UDP flows: $((a2 - a1)) via d1s1, $((b2 - b1)) via d1s2"
else
  fail ecmp "paths4=$paths4 paths6=$paths6 stable=$same d1s1=$((a2 - a1)) d1s2=$((b2 - b1))"
fi

# --- inter-DC delay from the topology (500 us each way) --------------------------------------
intra=$(rtt_median_us d1r1h1 10.1.2.1); inter=$(rtt_median_us d1r1h1 10.2.1.1)
added=$((inter - intra))
if in_range "$added" 900 1200; then
  pass inter_dc_delay "RTT intra-DC ${intra} us, inter-DC ${inter} us: +${added} us for 2 x 500 us"
else
  fail inter_dc_delay "intra ${intra} us inter ${inter} us added ${added} us (want ~1000)"
fi

# --- 5 % loss on a rack uplink (ToR -> spines) ---------------------------------------------
"$lab" fault loss rack:d1r1 5 --dir up >/dev/null
read -r loss sent lost <<<"$(ping_loss d1r1h1 10.1.2.1 4000)"
dropped=$("$lab" faults --json | python3 -c 'import json,sys; print(sum(f["matched_packets"] for f in json.load(sys.stdin) if f["kind"]=="loss"))')
"$lab" undo all >/dev/null
read -r loss_after _ _ <<<"$(ping_loss d1r1h1 10.1.2.1 500)"
if in_range "$loss" 3.5 6.5 && in_range "$loss_after" 0 0; then
  pass loss "injected 5 %, measured ${loss} % (${lost}/${sent} echo requests, nft dropped ${dropped}); 0 % after undo"
else
  fail loss "injected 5 %, measured ${loss} % of ${sent}; after undo ${loss_after} %"
fi

# --- 1 ms delay by the delay line on the rack's downlink -----------------------------------
base=$(rtt_median_us d1r1h1 10.1.2.1)
"$lab" fault delay rack:d1r2 1000 --dir down --method nfqueue >/dev/null
delayed=$(rtt_median_us d1r1h1 10.1.2.1)
delayed6=$(rtt_median_us d1r1h1 fd00:1:2::1)
late=$("$lab" faults --json | python3 -c '
import json,sys
for f in json.load(sys.stdin):
    if f["kind"]=="delay" and not f.get("base"):
        d=f["delayline"]
        if not d:
            print("none: the delay line wrote no stats (alive=%s)" % f["alive"]); continue
        l=d["lateness_us"]
        print("p50 %s us p99 %s us max %s us over %s packets, SCHED_FIFO %s" % (
            l["p50"], l["p99"], l["max"], d["packets"], d["sched_fifo"]))')
"$lab" undo all >/dev/null
after=$(rtt_median_us d1r1h1 10.1.2.1)
added=$((delayed - base))
if in_range "$added" 900 1150 && in_range "$delayed6" 900 1500 && ((after < base + 300)); then
  pass delay "injected 1000 us, RTT median ${base} -> ${delayed} us (+${added} us; IPv6 ${delayed6} us), ${after} us after undo; delay-line lateness ${late}"
else
  fail delay "injected 1000 us: base ${base} delayed ${delayed} (+${added}) v6 ${delayed6} after ${after}; lateness ${late}"
fi

# --- black hole: exactly the chosen pair, then a port tuple --------------------------------
"$lab" fault blackhole d1r1h1 d2r1h2 >/dev/null
ok=1
for p in "d1r1h1 10.2.1.2" "d1r1h1 fd00:2:1::2" "d2r1h2 10.1.1.1" "d2r1h2 fd00:1:1::1"; do
  set -- $p
  if x "$1" ping -n -q -c2 -i 0.2 -W1 "$2" >/dev/null 2>&1; then ok=0; echo "  $1 -> $2 passes"; fi
done
for p in "d1r1h1 10.2.1.1" "d1r1h1 fd00:2:1::1" "d1r1h2 10.2.1.2" "d2r1h2 10.1.1.2" "d2r1h1 10.1.1.1"; do
  set -- $p
  if ! x "$1" ping -n -q -c1 -W1 "$2" >/dev/null 2>&1; then ok=0; echo "  $1 -> $2 blocked"; fi
done
"$lab" undo all >/dev/null
"$lab" fault blackhole d1r2h1 d1r2h2 --proto tcp --dport 9001 >/dev/null
tcp() { x d1r2h1 timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; echo $?; }
r9001=$(tcp 10.1.2.2 9001); r9002=$(tcp 10.1.2.2 9002); r6=$(tcp fd00:1:2::2 9001)
x d1r2h1 ping -n -q -c1 -W1 10.1.2.2 >/dev/null 2>&1 && icmp=0 || icmp=1
"$lab" undo all >/dev/null
# 124: timed out (dropped); 1: refused (reached the host, nothing listens).
if [[ $ok == 1 && $r9001 == 124 && $r6 == 124 && $r9002 == 1 && $icmp == 0 ]]; then
  pass blackhole "pair d1r1h1<->d2r1h2 dropped both ways (v4+v6), 5 neighbour pairs unaffected; tuple tcp/9001 dropped, tcp/9002 and ICMP pass"
else
  fail blackhole "pair ok=$ok tuple: 9001=$r9001 v6=$r6 9002=$r9002 icmp=$icmp"
fi

# --- host down, rack down, spine down, freeze; undo restores everything -------------------
"$lab" fault hostdown d1r1h2 >/dev/null
"$lab" fault rackdown d2r2 >/dev/null
"$lab" fault down spine:d1s1 >/dev/null
ip netns exec pm-d1r2h1 sleep 30 & sleeper=$!
sleep 0.3
"$lab" fault freeze d1r2h1 >/dev/null
state=$(awk '{print $3}' "/proc/$sleeper/stat" 2>/dev/null || echo '?')
down_out=$("$lab" check || true)
"$lab" undo all >/dev/null
state2=$(awk '{print $3}' "/proc/$sleeper/stat" 2>/dev/null || echo '?')
kill "$sleeper" 2>/dev/null || true; wait "$sleeper" 2>/dev/null || true
# Alive hosts: 8 - d1r1h2 - 2 in d2r2 = 5 -> 5*4*2 pairs; spine d1s1's loss is absorbed by ECMP.
if [[ "$down_out" == *"40/112"* ]] && [[ $state == T && $state2 == S ]] && out=$("$lab" check); then
  pass link_faults "down: ${down_out%%$'\n'*}; freeze stops processes (state $state -> $state2); after undo: $out"
else
  fail link_faults "while down: ${down_out%%$'\n'*}; freeze $state -> $state2; after undo: ${out:-} / now $("$lab" check || true)"
fi

# --- teardown after a "crash": state lost, delay line running --------------------------------
"$lab" fault delay host:d1r1h1 500 >/dev/null
pids=$("$lab" faults --json | python3 -c 'import json,sys; print(" ".join(str(f["pid"]) for f in json.load(sys.stdin) if f.get("pid")))')
rm -f /run/pmlab/state.json   # as if the lab's process had died without a trace
"$lab" down >/dev/null 2>&1
left_ns=$(ip netns list | grep -c '^pm-' || true)
left_links=$(ip -o link show | grep -c ': pm-' || true)
left_veth=$(ip -o link show type veth | grep -c 'pm-' || true)
left_tables=$(nft list tables 2>/dev/null | grep -c pmlab || true)
left_procs=0
for p in $pids; do
  if [[ -e /proc/$p ]] && [[ $(awk '{print $3}' "/proc/$p/stat") != Z ]]; then left_procs=$((left_procs + 1)); fi
done
gc_after=$(sysctl -n net.ipv4.neigh.default.gc_thresh3)
if [[ $left_ns == 0 && $left_links == 0 && $left_veth == 0 && $left_tables == 0 && $left_procs == 0 && $gc_after == "$gc_before" ]]; then
  pass teardown "no pm- namespace, link, veth, nft table or delay line left (killed $(wc -w <<<"$pids")); sysctls as before"
else
  fail teardown "left: ns=$left_ns links=$left_links veth=$left_veth tables=$left_tables procs=$left_procs gc_thresh3 $gc_before -> $gc_after"
fi

if ((fails)); then
  echo "lab tests: $fails FAILED"
  exit 1
fi
echo "lab tests: all passed"
