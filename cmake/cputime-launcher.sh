#!/usr/bin/env bash
# Compiler/linker launcher that records the CPU time (user + sys) of every build step, for
# scripts/build-profile.sh. Appends "<user s> <sys s> <wall s> <output>" to $PINGMESH_CPUTIME_LOG
# and runs the command unchanged (stacks with ccache: pass "cputime-launcher.sh;ccache").
out=unknown
prev=
for a in "$@"; do
  [[ $prev == -o ]] && out=$a
  prev=$a
done
exec /usr/bin/time -q -f "%U %S %e $out" -a -o "${PINGMESH_CPUTIME_LOG:-/dev/null}" "$@"
