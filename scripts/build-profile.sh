#!/usr/bin/env bash
# Measures where build time goes: a clean build in a fresh folder with every compile and link step
# timed in CPU seconds (user + sys, which a shared machine inflates far less than wall time).
# Usage: scripts/build-profile.sh [release|asan|ci-release|ci-asan] [dir] [-- extra cmake args]
#   dir defaults to /tmp/pingmesh-profile-<kind>; it is wiped first. ccache is not used.
# Prints the total, the split compile/link, CPU per target, and the 15 costliest steps; the raw
# log is <dir>/cputime.log ("user sys wall output").
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
kind="${1:-release}"
dir="${2:-/tmp/pingmesh-profile-$kind}"
shift $(($# < 2 ? $# : 2)) || true
[[ ${1:-} == -- ]] && shift
case "$kind" in
  release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DPINGMESH_SANITIZE=ON -DPINGMESH_BENCH=OFF) ;;
  ci-release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPINGMESH_CI=ON) ;;
  ci-asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DPINGMESH_SANITIZE=ON -DPINGMESH_BENCH=OFF -DPINGMESH_CI=ON) ;;
  *) echo "usage: $0 [release|asan|ci-release|ci-asan] [dir] [-- cmake args]" >&2; exit 2 ;;
esac
rm -rf "$dir"
launcher="$src/cmake/cputime-launcher.sh"
export PINGMESH_CPUTIME_LOG="$dir/cputime.log" CCACHE_DISABLE=1
cmake -S . -B "$dir" -G Ninja "${flags[@]}" "$@" -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher" \
  -DCMAKE_CXX_LINKER_LAUNCHER="$launcher" >/dev/null
: >"$PINGMESH_CPUTIME_LOG"
start=$(date +%s)
cmake --build "$dir" -- -j"$(nproc)" >"$dir/build-output.log"
end=$(date +%s)
echo "build-profile: $kind, wall $((end - start)) s (nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v dir="$dir/" '
  { cpu = $1 + $2; sub(dir, "", $4); total += cpu
    if ($4 ~ /\.o$/) { compile += cpu; n++ } else { link += cpu; nl++ }
    t = $4; if (t ~ /CMakeFiles\//) { sub(/.*CMakeFiles\//, "", t); sub(/\.dir\/.*/, "", t) }
    else { sub(/.*\//, "", t); t = t " (link)" }
    per[t] += cpu; step[$4] = cpu }
  END {
    printf "total CPU %.1f s: compile %.1f s (%d objects), link %.1f s (%d links)\n", total, compile, n, link, nl
    print "-- CPU per target (compile + link), s"
    for (t in per) printf "%8.1f  %s\n", per[t], t | "sort -rn | head -40"
    close("sort -rn | head -40")
    print "-- costliest steps, s"
    for (s in step) printf "%8.1f  %s\n", step[s], s | "sort -rn | head -15"
  }' "$PINGMESH_CPUTIME_LOG"
