#!/usr/bin/env python3
"""Integration test of Prometheus remote write from `pingmesh server` (the collector embedded in
the server, fed by real agents), against a real Prometheus from Debian started here on a free
127.0.0.1 port (--web.enable-remote-write-receiver), its storage in a temporary directory.

A loopback mesh (2 DCs x 2 racks x 1 server, real agents on 127.77.x.y probing TCP, UDP, ICMP
where allowed and HTTP every second) reports to a server started with `--grace 3` and
`--remote-write-url`. The test waits for the first 1-minute window that holds results to be
stored and exported, then reads every DC-pair and rack-pair series of that window back with
PromQL and compares it with the server's own query API (/api/v1/matrix) for the same window:
probe counts (the counters are cumulative since the server started: their increase over the
window), loss ratio and P50/P99. Only samples stamped with the window's end count.

Prints "SKIPPED: ..." and exits 0 when Prometheus is missing. Python 3 standard library.

usage: server_remote_write_it.py --binary PATH [--prometheus /usr/bin/prometheus] [--keep]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from mesh import (Failure, Mesh, _pdeathsig, check, free_port, get_json, http,  # noqa: E402
                  install_signal_handlers, log, topology, wait_until)
from remote_write_it import metric_value, promql, with_matchers  # noqa: E402

WINDOW_S = 60
GRACE_S = 3
TCP_PORT, HTTP_PORT = 29121, 29122
METRICS = (  # (exported selector, server matrix metric, scale to the server's unit)
    ('pingmesh_probes_total', "probes", 1),
    ('pingmesh_loss_ratio', "loss", 1),
    ('pingmesh_rtt_seconds{quantile="0.5"}', "p50", 1e6),
    ('pingmesh_rtt_seconds{quantile="0.99"}', "p99", 1e6),
)


class RemoteWriteMesh(Mesh):
    """The loopback mesh whose server also exports to a remote-write receiver."""

    def __init__(self, *args, server_extra=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.server_extra = list(server_extra)

    def _spawn(self, args, logname, prefix=()):
        if args and args[0] == "server":
            args = args + self.server_extra
        return super()._spawn(args, logname, prefix)


def cells(m):
    return {(m["rows"][i], m["cols"][j]): c["value"]
            for i, row in enumerate(m["cells"]) for j, c in enumerate(row) if not c["missing"]}


def window_values(prom, selector, at, counter):
    """{labels: value} of the series with a sample stamped `at` (a window's end). A range
    selector gives each sample with its own timestamp, where an instant query would also return
    an earlier window's sample from within its 5-minute look-back. A counter's value is its
    increase over the window: minus its previous sample, when it has one (a series is exported
    only for the windows that hold it, so that sample may be several windows older)."""
    out = {}
    for s in promql(prom, f"{selector}[300s]", at):
        points = [(float(t), float(v)) for t, v in s["values"]]
        if not points or points[-1][0] != at:
            continue  # not in this window
        value = points[-1][1]
        if counter and len(points) > 1:
            value -= points[-2][1]
        out[tuple(sorted(s["metric"].items()))] = value
    return out


def compare(prom, mesh, window, protocols, dcs):
    """Every exported DC-pair and rack-pair series of the window equals the server's matrix."""
    at = window + WINDOW_S  # samples carry the window's end
    frm, to = window, window + WINDOW_S
    checked = 0
    for proto in protocols:
        for selector, metric, scale in METRICS:
            queries = [("dc", "", 'level="dc_pair"', ("src_dc", "dst_dc"))]
            queries += [("rack", f"&dc={dc}", f'level="rack_pair",src_dc="{dc}",dst_dc="{dc}"',
                         ("src_rack", "dst_rack")) for dc in dcs]
            for level, extra, matchers, keys in queries:
                m = get_json(f"{mesh.url}/api/v1/matrix?level={level}{extra}&metric={metric}"
                             f"&protocol={proto}&from={frm}&to={to}")
                want = cells(m)
                what = f"{selector} {proto} {level}{extra}"
                got = window_values(prom, with_matchers(selector,
                                                        f'{matchers},protocol="{proto}"'),
                                    at, counter=metric == "probes")
                have = {(dict(labels)[keys[0]], dict(labels)[keys[1]]): v
                        for labels, v in got.items()}
                check(want, f"{what}: the server's matrix has no cell for window {window}")
                check(set(have) == set(want),
                      f"{what}: exported {sorted(have)} vs server {sorted(want)}")
                for k, v in want.items():
                    check(abs(have[k] * scale - v) <= 1e-9 * max(abs(v), 1.0),
                          f"{what} {k}: exported {have[k]} vs server {v}")
                    checked += 1
                check(all(dict(labels).get("cluster") == "srv" for labels in got),
                      f"{what}: external label missing: {list(got)[:1]}")
    return checked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not os.access(args.prometheus, os.X_OK):
        print(f"SKIPPED: {args.prometheus} not found (Debian package prometheus; "
              "scripts/install-deps.sh)")
        return 0
    install_signal_handlers()
    t0 = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="pingmesh-server-rw-it-")
    prom_proc = None
    mesh = None
    ok = False
    try:
        prom_port = free_port()
        prom_cfg = os.path.join(workdir, "prometheus.yml")
        with open(prom_cfg, "w") as f:
            f.write("global: {}\n")
        with open(os.path.join(workdir, "prometheus.log"), "wb") as logf:
            prom_proc = subprocess.Popen([
                args.prometheus, f"--config.file={prom_cfg}",
                f"--storage.tsdb.path={workdir}/prom-data",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--web.enable-remote-write-receiver", "--log.level=warn"],
                stdout=logf, stderr=subprocess.STDOUT, preexec_fn=_pdeathsig)
        prom = f"http://127.0.0.1:{prom_port}"
        wait_until("prometheus ready", lambda: http("GET", prom + "/-/ready")[0] == 200, 30)

        topo = topology(dcs=2, racks=2, servers=1, tcp_port=TCP_PORT, http_port=HTTP_PORT)
        protocols = [p["protocol"] for p in topo["dcs"][0]["probes"]]
        dcs = [d["name"] for d in topo["dcs"]]
        mesh = RemoteWriteMesh(args.binary, os.path.join(workdir, "mesh"), topo,
                               tcp_port=TCP_PORT, http_port=HTTP_PORT,
                               server_extra=["--grace", str(GRACE_S),
                                             "--remote-write-url", prom + "/api/v1/write",
                                             "--remote-write-label", "cluster=srv"])
        mesh.start_server()
        mesh.import_topology()
        mesh.start_agents()
        started = time.time()
        log(f"prometheus {prom}, server {mesh.url}, {len(mesh.agents)} agents, "
            f"protocols {protocols}")

        # The first window with results is the one the agents started in; it is exported once
        # it closes (its end + grace, checked about every second).
        window = int(started) // WINDOW_S * WINDOW_S
        if started - window > WINDOW_S - 5:  # too close to its end to hold results surely
            window += WINDOW_S

        def exported():
            mesh.check_agents_running()
            status, text = http("GET", mesh.url + "/metrics")
            check(status == 200, f"server /metrics: HTTP {status}")
            failed = metric_value(text, 'pingmesh_collector_remote_write_samples_total'
                                        '{outcome="failed"}')
            check(not failed, f"remote write failed: {failed} samples")
            sent = metric_value(text, 'pingmesh_collector_remote_write_samples_total'
                                      '{outcome="sent"}')
            queued = metric_value(text, "pingmesh_collector_remote_write_queue_samples")
            if not sent or queued != 0:
                return None
            # This window's own samples (stamped with its end), not an earlier window's that
            # an instant query at that time would also see within its 5-minute look-back.
            got = promql(prom, 'count(timestamp(pingmesh_probes_total{level="dc_pair"}) == '
                         f'{window + WINDOW_S})', window + WINDOW_S)
            return sent if got else None
        deadline = window + WINDOW_S + GRACE_S + 30 - time.time()
        sent = wait_until(f"window {window} exported", exported, deadline, interval_s=1)
        log(f"window {window} stored and exported: {sent:.0f} samples sent")

        checked = compare(prom, mesh, window, protocols, dcs)
        # The window's exported DC-pair probes are not nothing.
        total = sum(window_values(prom, 'pingmesh_probes_total{level="dc_pair"}',
                                  window + WINDOW_S, counter=True).values())
        check(total > 0, f"no probes exported for window {window}")
        log(f"{checked} exported values equal the server's query API; "
            f"{total:.0f} probes in the window")
        ok = True
        log(f"PASS in {time.monotonic() - t0:.1f}s")
        return 0
    except Failure as e:
        log(f"FAIL: {e}")
        if mesh:
            sys.stdout.write("--- server log tail\n" + mesh.tail("server.log"))
        return 1
    finally:
        if mesh:
            mesh.close()
        if prom_proc and prom_proc.poll() is None:
            prom_proc.terminate()
            try:
                prom_proc.wait(10)
            except subprocess.TimeoutExpired:
                prom_proc.kill()
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir}")


if __name__ == "__main__":
    sys.exit(main())
