#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: once on the release build and once
# under AddressSanitizer + UndefinedBehaviorSanitizer. This is the README's test command and
# exactly what CI runs (.ci/run).
#   scripts/test.sh            everything
#   scripts/test.sh release    release build only
#   scripts/test.sh asan       sanitizer build only
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
scripts/install-deps.sh test

jobs=$(nproc)
run_suite() {
  local kind="$1" dir="$2"
  echo "== build ($kind)"
  scripts/build.sh "$kind"
  echo "== test ($kind)"
  # Lab tests need root and network namespaces; they say SKIPPED with the reason otherwise.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 600
}
web_tests() {
  echo "== web UI component tests (vitest)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm test --silent)
}
case "$what" in
  all) run_suite release build; web_tests; run_suite asan build-asan ;;
  release) run_suite release build; web_tests ;;
  asan) run_suite asan build-asan ;;
  *) echo "usage: $0 [all|release|asan]" >&2; exit 2 ;;
esac
echo "== all tests passed ($what)"
