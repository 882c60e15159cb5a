#!/usr/bin/env python3
"""Integration test of the collector's Prometheus remote write against the real receivers from
Debian: Prometheus (--web.enable-remote-write-receiver) and VictoriaMetrics, each started here on
a free 127.0.0.1 port with its storage in a temporary directory.

Two `pingmesh collector`s are started, one writing to each receiver (the VictoriaMetrics one with
server-pair series on). Both are fed the same synthetic result batches (JSON, POST
/api/v1/results) for 2 DCs x 2 racks x 2 servers, TCP and UDP, with drops and timeouts. The
results are placed in a window that closes ~15 s later: `--grace` is chosen from the wall clock
(see choose_window()). Once the window is stored and exported, every exported series is read
back with PromQL (/api/v1/query) and compared with what the collector's own query API
(/api/v1/matrix) says for that window: probe counts, loss ratio, P50/P90/P99/P99.9.

Prints "SKIPPED: ..." and exits 0 when a receiver binary is missing. Python 3 standard library.

usage: remote_write_it.py --binary PATH [--prometheus /usr/bin/prometheus]
                          [--victoria-metrics /usr/bin/victoria-metrics] [--keep]
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from mesh import (Failure, _pdeathsig, check, free_port, get_json, http,  # noqa: E402
                  log, wait_until)

import subprocess  # noqa: E402

DCS = ("dc-a", "dc-b")
RACKS = ("r1", "r2")
SERVERS = 2
WINDOW_S = 60
CLOSE_AFTER_S = 15  # the fed window closes this long after the collectors start


def server_names():
    out = []
    for dc in DCS:
        for rack in RACKS:
            for i in range(SERVERS):
                out.append((f"{dc}-{rack}-s{i}", dc, f"{dc}-{rack}"))
    return out


def choose_window(now):
    """(window start, grace): a window that accepts results now and closes CLOSE_AFTER_S later.
    Early in a minute the previous window is still open (its grace is stretched to close it
    soon); late in a minute the current one closes soon with a small grace."""
    minute = now // WINDOW_S * WINDOW_S
    sec = now - minute
    if sec <= 40:
        return minute - WINDOW_S, sec + CLOSE_AFTER_S
    return minute, max(1, sec + CLOSE_AFTER_S - WINDOW_S)


def make_batches(window_start, rng):
    """One batch per source server: every other server probed over TCP and UDP."""
    servers = server_names()
    batches = []
    for b, (name, dc, rack) in enumerate(servers):
        peers = [s for s in servers if s[0] != name]
        results = []
        for pi, (pname, pdc, prack) in enumerate(peers):
            base = 80 if pdc == dc and prack == rack else 250 if pdc == dc else 1500
            for proto in ("TCP", "UDP"):
                for k in range(rng.randint(20, 40)):
                    ts = (window_start + 1 + rng.randint(0, 50)) * 1_000_000
                    roll = rng.random()
                    outcome = "OK" if roll < 0.9 else "DROP" if roll < 0.95 else "TIMEOUT"
                    rtt = int(base * rng.lognormvariate(0, 0.5)) + 1
                    if outcome == "DROP":
                        rtt += 1_000_000
                    if outcome == "TIMEOUT":
                        rtt = 0
                    results.append({"peer": pi, "timestampUs": str(ts), "protocol": proto,
                                    "outcome": outcome, "rttUs": rtt})
        batches.append({
            "agent": name, "dc": dc, "rack": rack, "batchId": str(1000 + b),
            "peers": [{"name": p[0], "dc": p[1], "rack": p[2]} for p in peers],
            "results": results})
    return batches


class Procs:
    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def spawn(self, name, args):
        logf = open(os.path.join(self.workdir, name + ".log"), "wb")
        p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                             preexec_fn=_pdeathsig, cwd=self.workdir)
        self.procs.append((name, p))
        return p

    def tail(self, name, n=20):
        try:
            with open(os.path.join(self.workdir, name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def close(self):
        for _, p in self.procs:
            if p.poll() is None:
                p.terminate()
        for name, p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def promql(base, query, at):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": str(at)})
    r = get_json(url)
    check(r.get("status") == "success", f"{url}: {r}")
    return r["data"]["result"]


def close_enough(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


METRICS = (  # (exported series selector suffix, collector matrix metric, scale to collector unit)
    ('pingmesh_probes_total', "probes", 1),
    ('pingmesh_loss_ratio', "loss", 1),
    ('pingmesh_rtt_seconds{quantile="0.5"}', "p50", 1e6),
    ('pingmesh_rtt_seconds{quantile="0.9"}', "p90", 1e6),
    ('pingmesh_rtt_seconds{quantile="0.99"}', "p99", 1e6),
    ('pingmesh_rtt_seconds{quantile="0.999"}', "p999", 1e6),
)


def with_matchers(selector, matchers):
    if "{" in selector:
        return selector[:-1] + "," + matchers + "}"
    return selector + "{" + matchers + "}"


def compare(label, rx_base, coll_base, window, rel, pairs):
    """Every exported series of the window equals the collector's own matrix cell."""
    at = window + WINDOW_S + 1
    frm, to = window, window + WINDOW_S
    checked = 0
    for proto in ("tcp", "udp"):
        for selector, metric, scale in METRICS:
            # DC pairs.
            m = get_json(f"{coll_base}/api/v1/matrix?level=dc&metric={metric}&protocol={proto}"
                         f"&from={frm}&to={to}")
            got = promql(rx_base, with_matchers(selector, f'level="dc_pair",protocol="{proto}"'), at)
            want = {(m["rows"][i], m["cols"][j]): c["value"]
                    for i, row in enumerate(m["cells"]) for j, c in enumerate(row)
                    if not c["missing"]}
            have = {(s["metric"]["src_dc"], s["metric"]["dst_dc"]): float(s["value"][1])
                    for s in got}
            check(set(have) == set(want),
                  f"{label} {selector} {proto} dc pairs: exported {sorted(have)} vs collector "
                  f"{sorted(want)}")
            for k, v in want.items():
                check(close_enough(have[k] * scale, v, rel),
                      f"{label} {selector} {proto} {k}: exported {have[k]} vs collector {v}")
                checked += 1
            check(all(s["metric"].get("cluster") == "it" for s in got),
                  f"{label}: external label missing: {got[:1]}")
            # Rack pairs inside each DC.
            for dc in DCS:
                m = get_json(f"{coll_base}/api/v1/matrix?level=rack&dc={dc}&metric={metric}"
                             f"&protocol={proto}&from={frm}&to={to}")
                got = promql(rx_base, with_matchers(
                    selector, f'level="rack_pair",protocol="{proto}",src_dc="{dc}",'
                              f'dst_dc="{dc}"'), at)
                want = {(m["rows"][i], m["cols"][j]): c["value"]
                        for i, row in enumerate(m["cells"]) for j, c in enumerate(row)
                        if not c["missing"]}
                have = {(s["metric"]["src_rack"], s["metric"]["dst_rack"]): float(s["value"][1])
                        for s in got}
                check(set(have) == set(want) and want,
                      f"{label} {selector} {proto} racks of {dc}: {sorted(have)} vs "
                      f"{sorted(want)}")
                for k, v in want.items():
                    check(close_enough(have[k] * scale, v, rel),
                          f"{label} {selector} {proto} {k}: exported {have[k]} vs collector {v}")
                    checked += 1
            # Server pairs between two racks (only where they are exported).
            if pairs:
                dc, r1, r2 = DCS[0], f"{DCS[0]}-{RACKS[0]}", f"{DCS[0]}-{RACKS[1]}"
                m = get_json(f"{coll_base}/api/v1/matrix?level=server&dc={dc}&src_rack={r1}"
                             f"&dst_rack={r2}&metric={metric}&protocol={proto}"
                             f"&from={frm}&to={to}")
                got = promql(rx_base, with_matchers(
                    selector, f'level="pair",protocol="{proto}",src_rack="{r1}",'
                              f'dst_rack="{r2}"'), at)
                want = {(m["rows"][i], m["cols"][j]): c["value"]
                        for i, row in enumerate(m["cells"]) for j, c in enumerate(row)
                        if not c["missing"]}
                have = {(s["metric"]["src_server"], s["metric"]["dst_server"]):
                        float(s["value"][1]) for s in got}
                check(set(have) == set(want) and want,
                      f"{label} {selector} {proto} server pairs: {sorted(have)} vs {sorted(want)}")
                for k, v in want.items():
                    check(close_enough(have[k] * scale, v, rel),
                          f"{label} {selector} {proto} {k}: exported {have[k]} vs collector {v}")
                    checked += 1
    if not pairs:
        got = promql(rx_base, 'count(pingmesh_probes_total{level="pair"})', at)
        check(not got, f"{label}: server-pair series exported without --remote-write-pairs")
    log(f"{label}: {checked} exported values equal the collector's query API")
    return checked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--victoria-metrics", default="/usr/bin/victoria-metrics")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    for b in (args.prometheus, args.victoria_metrics):
        if not os.access(b, os.X_OK):
            print(f"SKIPPED: {b} not found (Debian packages prometheus, victoria-metrics; "
                  "scripts/install-deps.sh)")
            return 0

    t0 = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="pingmesh-rw-it-")
    procs = Procs(workdir)
    ok = False
    try:
        # --- the receivers
        prom_port, vm_port = free_port(), free_port()
        prom_cfg = os.path.join(workdir, "prometheus.yml")
        with open(prom_cfg, "w") as f:
            f.write("global: {}\n")
        procs.spawn("prometheus", [
            args.prometheus, f"--config.file={prom_cfg}",
            f"--storage.tsdb.path={workdir}/prom-data",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--web.enable-remote-write-receiver",
            "--log.level=warn"])
        procs.spawn("victoria-metrics", [
            args.victoria_metrics, f"-httpListenAddr=127.0.0.1:{vm_port}",
            f"-storageDataPath={workdir}/vm-data", "-retentionPeriod=1",
            "-search.latencyOffset=1s", "-loggerLevel=WARN"])
        prom = f"http://127.0.0.1:{prom_port}"
        vm = f"http://127.0.0.1:{vm_port}"
        wait_until("prometheus ready", lambda: http("GET", prom + "/-/ready")[0] == 200, 30)
        wait_until("victoria-metrics ready", lambda: http("GET", vm + "/health")[0] == 200, 30)
        log(f"receivers up: prometheus {prom}, victoria-metrics {vm}")

        # --- the collectors, one per receiver
        window, grace = choose_window(int(time.time()))
        colls = {}
        for label, url, extra in (("prometheus", prom + "/api/v1/write", []),
                                  ("victoria-metrics", vm + "/api/v1/write",
                                   ["--remote-write-pairs"])):
            port = free_port()
            procs.spawn("collector-" + label, [
                args.binary, "collector", "--listen", f"127.0.0.1:{port}",
                "--data-dir", os.path.join(workdir, "coll-" + label), "--no-fsync",
                "--grace", str(grace), "--threads", "2",
                "--remote-write-url", url, "--remote-write-label", "cluster=it",
                "--remote-write-batch-size", "100"] + extra)
            colls[label] = f"http://127.0.0.1:{port}"
        for label, base in colls.items():
            wait_until(f"collector for {label}",
                       lambda b=base: http("GET", b + "/healthz")[0] == 200, 20)
        log(f"window {window} (closes at {window + WINDOW_S + grace}, now {time.time():.0f})")

        # --- feed the same results to both
        batches = make_batches(window, random.Random(20261122))
        total = sum(len(b["results"]) for b in batches)
        for base in colls.values():
            accepted = 0
            for b in batches:
                status, text = http("POST", base + "/api/v1/results", body=b)
                check(status == 200, f"POST results: {status} {text}")
                accepted += json.loads(text)["accepted"]
            check(accepted == total, f"accepted {accepted} of {total} results: window closed?")
        log(f"fed {total} results from {len(batches)} sources to each collector")

        # --- wait until the window is stored and exported
        def exported(base):
            status, text = http("GET", base + "/metrics")
            if status != 200:
                return None
            sent = metric_value(text, 'pingmesh_collector_remote_write_samples_total'
                                      '{outcome="sent"}')
            queued = metric_value(text, "pingmesh_collector_remote_write_queue_samples")
            failed = metric_value(text, 'pingmesh_collector_remote_write_samples_total'
                                        '{outcome="failed"}')
            check(not failed, f"{base}: remote write failed: {failed} samples")
            return sent if sent and queued == 0 else None
        for label, base in colls.items():
            sent = wait_until(f"{label} export", lambda b=base: exported(b),
                              CLOSE_AFTER_S + WINDOW_S // 2, interval_s=1)
            log(f"{label}: {sent:.0f} samples sent")
        check(http("GET", vm + "/internal/force_flush")[0] in (200, 204), "VM force_flush")

        # --- read back with PromQL and compare with the collector's own answers
        # (VictoriaMetrics keeps ~12 significant digits; Prometheus is exact.)
        def ready(base):
            at = window + WINDOW_S + 1
            return promql(base, 'count(pingmesh_probes_total{level="dc_pair"})', at)
        for label, base in (("prometheus", prom), ("victoria-metrics", vm)):
            wait_until(f"{label} series queryable", lambda b=base: ready(b), 15)
        compare("prometheus", prom, colls["prometheus"], window, 1e-12, pairs=False)
        compare("victoria-metrics", vm, colls["victoria-metrics"], window, 1e-9, pairs=True)

        # Counters are cumulative: the collector's probes over the window is their value, and
        # the DC-pair totals add up to everything fed.
        got = promql(prom, 'sum(pingmesh_probes_total{level="dc_pair"})', window + WINDOW_S + 1)
        check(got and float(got[0]["value"][1]) == total,
              f"sum of DC-pair probes {got} != {total} results fed")
        ok = True
        log(f"PASS in {time.monotonic() - t0:.1f}s")
        return 0
    except Failure as e:
        log(f"FAIL: {e}")
        for name, _ in procs.procs:
            sys.stdout.write(f"--- {name} log tail\n{procs.tail(name)}")
        return 1
    finally:
        procs.close()
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir}")


if __name__ == "__main__":
    sys.exit(main())
