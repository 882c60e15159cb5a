#!/usr/bin/env bash
# pingmesh lab: network namespaces as DCs, racks and hosts, with fault injection.
#   lab/lab.sh up TOPOLOGY|DxRxH   build (idempotent); writes lab/run/hosts.json
#   lab/lab.sh down                remove everything the lab made, also after a crash
#   lab/lab.sh status | hosts | check | faults [--json]
#   lab/lab.sh devices DC          a DC's spines and ToRs with their addresses (API `devices` JSON)
#   lab/lab.sh fault loss|delay|blackhole|down|hostdown|rackdown|freeze ...   ;  lab/lab.sh undo ID|all
# See docs/LAB.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py=python3
if [[ -x /usr/bin/python3 ]]; then py=/usr/bin/python3; fi
exec "$py" "$here/pmlab.py" "$@"
