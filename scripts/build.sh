#!/usr/bin/env bash
# Configures and builds pingmesh, and the web UI when Node.js is present.
# Usage: scripts/build.sh [release|asan] [ninja targets...]   (default: release, everything)
# Build trees: build/ (release) and build-asan/ (AddressSanitizer + UBSan); web/dist for the UI.
# Uses ccache when it is installed (PINGMESH_CCACHE=0: not); with CI=true, line-table debug info
# only (-DPINGMESH_CI=ON). Build-time settings and figures: docs/BUILD.md.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
shift || true
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DPINGMESH_SANITIZE=ON -DPINGMESH_BENCH=OFF) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
if [[ ${CI:-} == true ]]; then
  flags+=(-DPINGMESH_CI=ON)
fi
if [[ ${PINGMESH_CCACHE:-1} != 0 ]] && command -v ccache >/dev/null 2>&1; then
  flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  # Hits across clones and worktrees; the sloppiness lets it cache PINGMESH_PCH=ON builds too.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros}"
fi
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -- -j"$(nproc)" ${NINJA_FLAGS:-} "$@"

# The web UI (served by `pingmesh server` from web/dist). Rebuilt when its sources change.
if [[ $kind == release ]] && command -v npm >/dev/null 2>&1; then
  stamp=web/dist/.build-stamp
  newest=$(find web/src web/index.html web/package.json web/package-lock.json web/vite.config.* \
    -newer "$stamp" -print -quit 2>/dev/null || true)
  if [[ ! -f $stamp || -n $newest ]]; then
    echo "build: web UI (npm ci, vite build)"
    (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build >/dev/null)
    touch "$stamp"
  fi
fi
