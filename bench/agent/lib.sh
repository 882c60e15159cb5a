# Shared by the agent benchmarks (sourced): a two-namespace test bed and measurement helpers.
#
#   pmb-src  (10.78.0.1/30, veth b0)  ---  pmb-dst (10.78.0.2/30, veth b1)
#                                          + target addresses 10.77.X.Y/32 on its lo
#
# Everything that probes runs in pmb-src; targets live in pmb-dst, where the kernel answers ICMP
# echo and one `pingmesh agent` (wildcard listener, no pinglist) answers TCP/UDP on port 9001 and
# HTTP on 9002. pmb-src routes 10.77.0.0/16 via pmb-dst, so it keeps one neighbour entry whatever
# the number of targets. Probes are counted where they land (pmb-dst's /proc/net/snmp: ICMP
# InEchos, TCP PassiveOpens, UDP InDatagrams), the same way for every tool. Only these two
# namespaces are touched: nothing is routed in the root namespace.

PMB_SRC=pmb-src
PMB_DST=pmb-dst
PMB_LOCK=/tmp/pingmesh-agentbench.lock

pmb_src() { ip netns exec "$PMB_SRC" "$@"; }
pmb_dst() { ip netns exec "$PMB_DST" "$@"; }

# i (0-based) -> target address.
pmb_addr() { echo "10.77.$(($1 / 250)).$(($1 % 250 + 1))"; }

pmb_down() {
  ip netns del "$PMB_SRC" 2>/dev/null || true
  ip netns del "$PMB_DST" 2>/dev/null || true
}

# pmb_up COUNT: both namespaces, COUNT target addresses.
pmb_up() {
  local count=$1 i
  pmb_down
  ip netns add "$PMB_SRC"
  ip netns add "$PMB_DST"
  ip link add b0 netns "$PMB_SRC" type veth peer name b1 netns "$PMB_DST"
  pmb_src ip link set lo up
  pmb_dst ip link set lo up
  pmb_src ip addr add 10.78.0.1/30 dev b0
  pmb_dst ip addr add 10.78.0.2/30 dev b1
  pmb_src ip link set b0 up
  pmb_dst ip link set b1 up
  pmb_src ip route add 10.77.0.0/16 via 10.78.0.2
  {
    for ((i = 0; i < count; i++)); do echo "addr add $(pmb_addr "$i")/32 dev lo"; done
  } | pmb_dst ip -batch -
  for ns in "$PMB_SRC" "$PMB_DST"; do
    ip netns exec "$ns" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 \
      net.ipv4.icmp_msgs_burst=100000 net.ipv4.ping_group_range="0 2147483647" \
      net.core.somaxconn=4096 2>/dev/null || true
  done
  # Fewer answers than asked would be false loss on the bench, not in the tool: check it reaches.
  pmb_src ping -c 1 -W 2 "$(pmb_addr $((count - 1)))" >/dev/null
}

# Counters of probes that reached pmb-dst: "icmp_in_echos tcp_passive_opens udp_in_datagrams".
pmb_counts() {
  pmb_dst awk '
    $1 == "Icmp:" && $2 ~ /^[0-9]/ { for (i = 2; i <= NF; i++) icmp[i] = $i }
    $1 == "Icmp:" && $2 !~ /^[0-9]/ { for (i = 2; i <= NF; i++) if ($i == "InEchos") ie = i }
    $1 == "Tcp:" && $2 ~ /^[0-9]/ { for (i = 2; i <= NF; i++) tcp[i] = $i }
    $1 == "Tcp:" && $2 !~ /^[0-9]/ { for (i = 2; i <= NF; i++) if ($i == "PassiveOpens") tp = i }
    $1 == "Udp:" && $2 ~ /^[0-9]/ { for (i = 2; i <= NF; i++) udp[i] = $i }
    $1 == "Udp:" && $2 !~ /^[0-9]/ { for (i = 2; i <= NF; i++) if ($i == "InDatagrams") ud = i }
    END { print icmp[ie] + 0, tcp[tp] + 0, udp[ud] + 0 }' /proc/net/snmp
}

# CPU ticks (utime + stime, all threads) of a process.
pmb_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pmb_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# pmb_pinglist FILE NAME PROTO PORT COUNT INTERVAL_MS [OFFSET]: a pinglist of COUNT targets.
pmb_pinglist() {
  local file=$1 name=$2 proto=$3 port=$4 count=$5 interval=$6 off=${7:-0} i
  {
    echo "<Pinglist format=\"1\" server=\"$name\" dc=\"b\" rack=\"r0\" version=\"$(date +%s%N | cut -c1-16)\" stopped=\"false\">"
    for ((i = off; i < off + count; i++)); do
      echo "  <Peer name=\"t$i\" addr=\"$(pmb_addr "$i")\" proto=\"$proto\" port=\"$port\" interval_ms=\"$interval\" payload=\"0\" dscp=\"0\" level=\"intra-dc\" dc=\"b\" rack=\"r$((i / 250))\"/>"
    done
    echo '</Pinglist>'
  } >"$file"
}

# pmb_pinglist_multi FILE NAME COUNT INTERVAL_MS PROTO... : every target once per protocol.
pmb_pinglist_multi() {
  local file=$1 name=$2 count=$3 interval=$4 i p port
  shift 4
  {
    echo "<Pinglist format=\"1\" server=\"$name\" dc=\"b\" rack=\"r0\" version=\"$(date +%s%N | cut -c1-16)\" stopped=\"false\">"
    for p in "$@"; do
      port=9001
      [[ $p == icmp ]] && port=0
      [[ $p == http ]] && port=9002
      for ((i = 0; i < count; i++)); do
        echo "  <Peer name=\"t$i\" addr=\"$(pmb_addr "$i")\" proto=\"$p\" port=\"$port\" interval_ms=\"$interval\" payload=\"0\" dscp=\"0\" level=\"intra-dc\" dc=\"b\" rack=\"r$((i / 250))\"/>"
      done
    done
    echo '</Pinglist>'
  } >"$file"
}

# Sum of an agent's probe counter lines matching a regex (from /metrics text on stdin).
pmb_metric_sum() { awk -v re="$1" '$0 ~ re && $1 !~ /^#/ {s += $NF} END {printf "%d\n", s}'; }
