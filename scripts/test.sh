#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: once on the release build and once
# under AddressSanitizer + UndefinedBehaviorSanitizer. This is the README's test command and
# exactly what CI runs (.ci/run).
#   scripts/test.sh            everything
#   scripts/test.sh release    release build only
#   scripts/test.sh asan       sanitizer build only
# The sanitizer suite runs every unit and integration test and the lab end-to-end test e2e_lab,
# but not the tests labelled lab-heavy (e2e_agent_lab, e2e_demo, lab_selftest): they drive the
# same binary code paths as e2e_lab, and the lab scripts, in ~4 min of mostly waiting; they run in
# the release suite; e2e_lab's healthy soak is 60 s there (180 s in the release suite).
# PINGMESH_ASAN_ALL=1 runs them all, soak included, under the sanitizers too (docs/BUILD.md).
# Each phase prints its wall and CPU time ("== time").
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
scripts/install-deps.sh test

jobs=$(nproc)
# Wall time and the CPU time of this script's children since the last call.
last_wall=$(date +%s)
last_cpu=0
phase_time() {
  local now cpu
  now=$(date +%s)
  # utime + stime of the waited-for children of this shell (fields 16, 17 of /proc/PID/stat).
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.0f", ($14 + $15) / hz }' \
    "/proc/$$/stat")
  echo "== time $1: wall $((now - last_wall)) s, CPU $((cpu - last_cpu)) s"
  last_wall=$now
  last_cpu=$cpu
}
run_suite() {
  local kind="$1" dir="$2"
  local select=()
  local soak=()
  if [[ $kind == asan && -z ${PINGMESH_ASAN_ALL:-} ]]; then
    select=(-LE lab-heavy)
    # The release suite soaks the healthy lab for its full 180 s; under the sanitizers the same
    # phases run with a 60 s soak (memory errors show in the first minute or not at all).
    soak=(PINGMESH_LAB_SOAK_S=60)
  fi
  echo "== build ($kind)"
  scripts/build.sh "$kind"
  phase_time "build ($kind)"
  echo "== test ($kind) ${select[*]}"
  # Lab tests need root and network namespaces; they say SKIPPED with the reason otherwise.
  env "${soak[@]}" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 600 "${select[@]}"
  phase_time "test ($kind)"
}
web_tests() {
  echo "== web UI component tests (vitest)"
  # scripts/build.sh has just installed web/node_modules from the lock file; npm ci again only
  # when it has not (npm ci deletes node_modules first).
  (cd web && { [[ node_modules/.package-lock.json -nt package-lock.json ]] ||
    npm ci --no-audit --no-fund --loglevel=error >/dev/null; } && npm test --silent)
  phase_time "web tests"
}
case "$what" in
  all) run_suite release build; web_tests; run_suite asan build-asan ;;
  release) run_suite release build; web_tests ;;
  asan) run_suite asan build-asan ;;
  *) echo "usage: $0 [all|release|asan]" >&2; exit 2 ;;
esac
echo "== all tests passed ($what)"
