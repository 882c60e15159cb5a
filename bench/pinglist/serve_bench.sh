#!/usr/bin/env bash
# Pinglist GETs per second: `pingmesh server` against nginx (one worker) serving the same
# pinglist as a static file with its ETag, in the same run, with wrk as the load on the other core.
#
#   bench/pinglist/serve_bench.sh [duration_s] [connections] [runs]
#
# Both servers are pinned to CPU 0 and wrk to CPU 1; pingmesh runs one I/O thread, like nginx's
# one worker. Each run measures conditional GETs (304) and full GETs (200) of each server, the two
# servers back to back; it prints every run, then the medians over the runs. Every wrk run is
# bounded: -d duration_s (default 10) with -c connections (default 32); runs default to 5.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration="${1:-10}"
conns="${2:-32}"
runs="${3:-5}"
bin=build/src/cmd/pingmesh
[[ -x $bin ]] || { echo "build first: scripts/build.sh" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx (scripts/install-deps.sh test)" >&2; exit 1; }

work=$(mktemp -d /tmp/pingmesh-serve-bench.XXXXXX)
chmod 755 "$work"  # nginx workers run as www-data
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$work"; }
trap cleanup EXIT

port_pm=19300
port_ng=19301
token=bench-admin
# Topology: 1 DC x 10 racks x 10 servers (addresses are data only; nothing is probed).
python3 - "$work/topology.json" <<'PY'
import json, sys
t = {"dcs": [{"name": "dc1", "mode": "rack"}], "racks": [], "servers": []}
for r in range(10):
    t["racks"].append({"dc": "dc1", "name": f"r{r}"})
    for s in range(10):
        t["servers"].append({"name": f"h{r}-{s}", "dc": "dc1", "rack": f"r{r}",
                             "addresses": [f"10.0.{r}.{s + 1}"]})
json.dump(t, open(sys.argv[1], "w"))
PY
taskset -c 0 "$bin" server --listen 127.0.0.1:$port_pm --db "$work/pm.db" --data-dir "$work/data" --threads 1 \
  --admin-token $token --agent-token $token --log-level warn >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port_pm/healthz >/dev/null && break; sleep 0.1; done
curl -sf -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  --data-binary @"$work/topology.json" http://127.0.0.1:$port_pm/api/v1/topology >/dev/null
for r in $(seq 0 9); do for s in $(seq 0 9); do
  curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"name\":\"h$r-$s\",\"addresses\":[\"10.0.$r.$((s + 1))\"],\"version\":\"bench\"}" \
    http://127.0.0.1:$port_pm/api/v1/heartbeat >/dev/null
done; done
sleep 2  # liveness regeneration
url_pm=http://127.0.0.1:$port_pm/api/v1/pinglist/h0-0
mkdir -p "$work/www"
curl -sf -D "$work/pm.headers" -o "$work/www/h0-0" "$url_pm"
etag_pm=$(grep -i '^etag:' "$work/pm.headers" | cut -d' ' -f2- | tr -d '\r')
size=$(stat -c %s "$work/www/h0-0")

cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  default_type application/xml;
  client_body_temp_path $work/ngtmp;
  proxy_temp_path $work/ngtmp;
  fastcgi_temp_path $work/ngtmp;
  uwsgi_temp_path $work/ngtmp;
  scgi_temp_path $work/ngtmp;
  server { listen 127.0.0.1:$port_ng; root $work/www; etag on; }
}
NGINX
taskset -c 0 nginx -c "$work/nginx.conf" -e "$work/nginx.err" &
pids+=($!)
for _ in $(seq 50); do curl -sf http://127.0.0.1:$port_ng/h0-0 >/dev/null && break; sleep 0.1; done
url_ng=http://127.0.0.1:$port_ng/h0-0
etag_ng=$(curl -sfI "$url_ng" | grep -i '^etag:' | cut -d' ' -f2- | tr -d '\r')

# CPU time of processes: "utime stime" in clock ticks, summed.
cpu_ticks() {
  local u=0 st=0 p
  for p in "$@"; do
    if [[ -r /proc/$p/stat ]]; then
      read -r a b < <(awk '{print $14, $15}' /proc/"$p"/stat)
      u=$((u + a)); st=$((st + b))
    fi
  done
  echo "$u $st"
}
hz=$(getconf CLK_TCK)
# rps URL PIDS [HEADER]: prints "requests/s user-us-per-request system-us-per-request" of the
# server for a wrk run. CPU per request is the figure that holds on a busy machine: requests/s
# falls when other work shares CPU 0, the CPU spent per request does not.
rps() {
  local out u0 s0 u1 s1
  read -r u0 s0 <<<"$(cpu_ticks $2)"
  if [[ -n "${3:-}" ]]; then
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${duration}s" -H "$3" "$1")
  else
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${duration}s" "$1")
  fi
  read -r u1 s1 <<<"$(cpu_ticks $2)"
  echo "$out" | awk -v u=$((u1 - u0)) -v sy=$((s1 - s0)) -v hz="$hz" '
    /^ +[0-9]+ requests in/ {n = $1}
    /Non-2xx or 3xx responses/ {bad = $NF}
    /Requests\/sec/ {r = $2}
    END {
      if (bad > 0) {print "wrk saw " bad " error responses" > "/dev/stderr"; exit 1}
      printf "%s %.2f %.2f\n", r, (n > 0 ? u * 1e6 / hz / n : 0), (n > 0 ? sy * 1e6 / hz / n : 0)}'
}
check() {  # url header expected-status
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$2" "$1")
  [[ $code == "$3" ]] || { echo "unexpected status $code from $1 (wanted $3)" >&2; exit 1; }
}
check "$url_pm" "If-None-Match: $etag_pm" 304
check "$url_ng" "If-None-Match: $etag_ng" 304
cmp -s "$work/www/h0-0" <(curl -sf "$url_ng") || { echo "nginx serves other bytes" >&2; exit 1; }

pids_pm=${pids[0]}
pids_ng="$(cat "$work/nginx.pid") $(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')"
echo "pinglist: $size bytes; wrk -t1 -c$conns -d${duration}s on CPU 1; servers on CPU 0; $runs runs"
echo "us/r: server CPU per request, user+system (user); ratios: pingmesh/nginx for req/s,"
echo "nginx/pingmesh for CPU (> 1: pingmesh better)"
printf '%-4s %-5s %11s %11s %6s %16s %16s %6s\n' run kind "pingmesh/s" "nginx/s" ratio \
  "pingmesh us/r" "nginx us/r" ratio
results="$work/results"
: >"$results"
for run in $(seq "$runs"); do
  for kind in 304 200; do
    if [[ $kind == 304 ]]; then
      read -r a ua sa <<<"$(rps "$url_pm" "$pids_pm" "If-None-Match: $etag_pm")"
      read -r b ub sb <<<"$(rps "$url_ng" "$pids_ng" "If-None-Match: $etag_ng")"
    else
      read -r a ua sa <<<"$(rps "$url_pm" "$pids_pm")"
      read -r b ub sb <<<"$(rps "$url_ng" "$pids_ng")"
    fi
    echo "$kind $a $ua $sa $b $ub $sb" >>"$results"
    awk -v run="$run" -v k="$kind" -v a="$a" -v ua="$ua" -v sa="$sa" -v b="$b" -v ub="$ub" \
      -v sb="$sb" 'BEGIN {
      ca = ua + sa; cb = ub + sb
      printf "%-4s %-5s %11.0f %11.0f %6.2f %8.2f (%5.2f) %8.2f (%5.2f) %6.2f\n", run, k, a, b,
        a / b, ca, ua, cb, ub, (ca > 0 ? cb / ca : 0) }'
  done
done
echo "medians over $runs runs:"
for kind in 304 200; do
  # Median of each column separately; ratios are of the medians.
  awk -v k="$kind" '$1 == k' "$results" | python3 -c '
import statistics as st, sys
rows = [list(map(float, l.split()[1:])) for l in sys.stdin if l.strip()]
a, ua, sa, b, ub, sb = (st.median(c) for c in zip(*rows))
ca = st.median([r[1] + r[2] for r in rows]); cb = st.median([r[4] + r[5] for r in rows])
label = "conditional GET (304)" if sys.argv[1] == "304" else "full GET (200, %s B)" % sys.argv[2]
print("%-26s req/s %8.0f vs %8.0f (%.2f)   us/r %5.2f (user %5.2f, sys %5.2f) vs %5.2f (user %5.2f, sys %5.2f) (%.2f)"
      % (label, a, b, a / b, ca, ua, sa, cb, ub, sb, cb / ca))
' "$kind" "$size"
done
