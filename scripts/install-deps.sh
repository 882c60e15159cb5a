#!/usr/bin/env bash
# Installs the Debian 12 packages pingmesh needs to build, run and test. Idempotent and quiet
# when everything is present. Needs root (or sudo).
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config git lld
  libboost-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
  nlohmann-json3-dev libsqlite3-dev sqlite3 libprotobuf-dev protobuf-compiler libsnappy-dev
  libpugixml-dev libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
# Tools used by tests and the lab ('lab': build + these, for scripts/demo.sh): network namespaces, nftables, packet capture, HTTP load.
TEST_PKGS=(
  curl openssl python3 iproute2 iputils-ping ethtool nftables iptables procps psmisc tcpdump
  libnetfilter-queue-dev libmnl-dev
)
# Real peers and servers the tests and benchmarks start.
PEER_PKGS=(
  wrk nginx-light fping prometheus prometheus-alertmanager prometheus-blackbox-exporter
  prometheus-smokeping-prober victoria-metrics chromium
)

want=("${BUILD_PKGS[@]}")
case "${1:-build}" in
  build) ;;
  lab) want+=("${TEST_PKGS[@]}") ;;
  test|all) want+=("${TEST_PKGS[@]}" "${PEER_PKGS[@]}") ;;
  *) echo "usage: $0 [build|lab|test]" >&2; exit 2 ;;
esac

# Node.js builds the web UI; any Node >= 18 with npm will do (Debian's, or one already present).
if ! command -v npm >/dev/null 2>&1; then
  want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# Servers installed for tests must not start as system services; tests start their own.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
