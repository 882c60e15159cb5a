#!/usr/bin/env python3
"""Loopback end-to-end test of the whole chain: topology -> pinglist -> probe -> result ->
aggregate -> alert -> view, with the real `pingmesh server` and 8 real agents (2 DCs x 2 racks x
2 servers) on 127.77.x.y addresses, probing TCP, UDP, ICMP and HTTP every second.

usage: loopback_e2e.py --binary PATH [--workdir DIR] [--keep]
       loopback_e2e.py --binary PATH --ui WEB_DIR --artifacts DIR   (run the web e2e against it)
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesh import (ADMIN_TOKEN, Failure, Mesh, check, get_json, http,  # noqa: E402
                  install_signal_handlers, log, topology, wait_until)

PULL_S = 1.0  # agents' --pull-interval-ms
SLACK_S = 2.0
HEALTHY_SOAK_S = 12


def step(name):
    log(f"--- {name}")


def heartbeats_and_pinglists(m):
    def all_alive():
        m.check_agents_running()
        st = get_json(m.url + "/api/v1/status")
        return st if st.get("alive") == len(m.servers()) else f"status {st}"
    wait_until("every agent alive", all_alive, 20)
    others = {s["name"]: [o["addresses"][0] for o in m.servers() if o["name"] != s["name"]]
              for s in m.servers()}

    def pinglists_full():
        empty = []
        for s in m.servers():
            text = str(get_json(f"{m.url}/api/v1/pinglist/{s['name']}?format=json"))
            # Non-empty: it names some peer address other than its own.
            if not any(a in text for a in others[s["name"]]):
                empty.append(f"{s['name']}: {text[:200]}")
        return not empty or "; ".join(empty)
    wait_until("every pinglist names peers", pinglists_full, 10)
    srv = get_json(m.url + "/api/v1/servers")["items"]
    check(all(x.get("alive") for x in srv), f"not every server alive: {srv}")
    log(f"{len(srv)} servers alive, every pinglist names peers")


def probing_agents(m):
    """Waits until every agent's probe counter grows."""
    first = m.probes_total()

    def grown():
        now = m.probes_total()
        return all(now[n] > first[n] for n in now) or f"probes {now}"
    return wait_until("every agent probing", grown, 15)


def matrices_filled(m, since):
    """Every protocol: the DC matrix and each DC's rack matrix have no missing cell, samples in
    every cell, and plausible loopback RTTs (0 < p50 < 5 ms)."""
    dcs = [d["name"] for d in m.topo["dcs"]]
    problems = []
    for proto in protocols(m):
        views = [("dc", None)] + [("rack", d) for d in dcs]
        for level, dc in views:
            mx = m.matrix(level, proto, "p50", dc=dc, frm=since)
            want = dcs if level == "dc" else [r["name"] for r in m.topo["racks"] if r["dc"] == dc]
            if sorted(mx["rows"]) != sorted(want) or sorted(mx["cols"]) != sorted(want):
                problems.append(f"{level} {dc} {proto}: rows {mx['rows']} cols {mx['cols']}")
                continue
            for i, row in enumerate(mx["cells"]):
                for j, c in enumerate(row):
                    where = f"{level}{'/' + dc if dc else ''} {proto} {mx['rows'][i]}->{mx['cols'][j]}"
                    if c.get("missing") or not c.get("samples"):
                        problems.append(f"{where}: missing ({c})")
                    elif c.get("value") is None or not (0 < c["value"] < 5000):
                        problems.append(f"{where}: p50 {c.get('value')} us not in (0, 5000)")
    return problems


def protocols(m):
    return [p["protocol"] for p in m.topo["dcs"][0]["probes"]]


def loss_zero(m, since):
    bad = []
    for proto in protocols(m):
        mx = m.matrix("dc", proto, "loss", frm=since)
        for i, row in enumerate(mx["cells"]):
            for j, c in enumerate(row):
                if c.get("value") is not None and c["value"] > 0.01:
                    bad.append(f"{proto} {mx['rows'][i]}->{mx['cols'][j]} loss {c['value']}")
    return bad


def fleet_probes(m, since):
    """Total probes (all protocols) in the DC matrix since `since`."""
    total = 0
    for proto in protocols(m):
        mx = m.matrix("dc", proto, "probes", frm=since)
        for row in mx["cells"]:
            for c in row:
                total += c.get("value") or 0
    return total


def ctl(m, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGMESH_")}
    r = subprocess.run([m.binary, "ctl", "--server", m.url, "--token", ADMIN_TOKEN, *args],
                       capture_output=True, text=True, timeout=15, env=env)
    check(r.returncode == 0, f"pingmesh ctl {' '.join(args)}: exit {r.returncode}: {r.stderr}")
    return r.stdout


def counters_frozen(m, what):
    """After one pull interval + slack, every agent's probe counter must stay still."""
    time.sleep(PULL_S + SLACK_S)
    a = m.probes_total()
    time.sleep(PULL_S + SLACK_S)
    b = m.probes_total()
    moved = {n: (a[n], b[n]) for n in a if b[n] != a[n]}
    check(not moved, f"{what}: probe counters still moving: {moved}")
    log(f"{what}: every agent's probe counter frozen ({sum(b.values()):.0f} total)")


def run_loopback(m, started):
    step("topology import")
    m.import_topology()
    topo = get_json(m.url + "/api/v1/topology")
    check(len(topo["servers"]) == len(m.servers()), f"export has {len(topo['servers'])} servers")

    step("agents: heartbeat, pinglist, probing")
    m.start_agents()
    heartbeats_and_pinglists(m)
    probing_agents(m)

    step("results -> aggregates: matrices filled with plausible RTTs")
    probs = wait_until("matrices filled", lambda: (lambda p: True if not p else
                       "; ".join(p[:6]) + f" (+{max(0, len(p) - 6)})")(matrices_filled(m, started)),
                       20, 1.0)
    check(probs, "matrices")
    mx = m.matrix("dc", "tcp", "p50", frm=started)
    log("dc tcp p50 us: " + str([[c["value"] for c in row] for row in mx["cells"]]))
    bad = loss_zero(m, started)
    check(not bad, f"loss on loopback: {bad}")

    step("analyzer: no alert on a healthy mesh")
    # Evaluated every 2 s over 30 s windows; default rules fire at once (for_s 0).
    soak_end = time.monotonic() + HEALTHY_SOAK_S
    while time.monotonic() < soak_end:
        alerts = m.active_alerts()
        check(not alerts, f"alerts on a healthy mesh: {alerts}")
        m.check_agents_running()
        time.sleep(2)
    log(f"no alert in {HEALTHY_SOAK_S}s of healthy probing")

    step("kill switch: ctl stop")
    ctl(m, "stop")
    st = get_json(m.url + "/api/v1/status")
    check(st["stopped"] is True, f"status after stop: {st}")
    counters_frozen(m, "after stop")
    pl = get_json(f"{m.url}/api/v1/pinglists")
    log(f"pinglists stopped={pl.get('stopped')}")

    step("kill switch: ctl resume")
    ctl(m, "resume")
    probing_agents(m)
    log("every agent probes again")

    step("server restart mid-run")
    time.sleep(2.5)  # let a couple of batches be acknowledged
    acked = sum(m.agent_metrics(n).get("pingmesh_agent_upload_results_total", 0)
                for n in m.agents)
    before = fleet_probes(m, started)
    log(f"before restart: agents acked {acked:.0f} results; collector shows {before} probes")
    check(before > 0, "collector shows no probes before the restart")
    ui_status, ui_body = http("GET", m.url + "/")
    ui_served = ui_status == 200 and "<html" in ui_body.lower()
    t0 = time.monotonic()
    rc = m.stop_server()
    check(rc == 0, f"server exit code after SIGTERM: {rc}\n{m.tail('server.log')}")
    m.start_server()
    log(f"server back after {time.monotonic() - t0:.1f}s")
    if ui_served:  # web/dist is built: the UI must come back with the server
        st2, body2 = http("GET", m.url + "/")
        check(st2 == 200 and body2 == ui_body, f"UI not served after the restart: HTTP {st2}")
        log("the UI is served again")
    # Acknowledged results were durable (WAL): all are counted after the restart.
    after = wait_until("collector to show every acknowledged result",
                       lambda: (lambda n: n if n >= acked and n >= before else
                                f"{n} probes < acked {acked:.0f} / before {before}")(
                           fleet_probes(m, started)), 10, 0.5)
    log(f"after restart: collector shows {after} probes (>= {acked:.0f} acked before)")
    st = get_json(m.url + "/api/v1/status")
    check(st["stopped"] is False, f"kill switch state changed by the restart: {st}")
    probing_agents(m)
    m.check_agents_running()
    acked2 = sum(m.agent_metrics(n).get("pingmesh_agent_upload_results_total", 0)
                 for n in m.agents)
    wait_until("results flowing after the restart",
               lambda: fleet_probes(m, started) > after or "no new results", 15, 1.0)
    check(acked2 >= acked, "upload counter went backwards")
    log(f"results flow after the restart ({fleet_probes(m, started)} probes)")
    probs = matrices_filled(m, started)
    check(not probs, f"matrices after restart: {probs[:6]}")
    # The analyzer evaluates every 2 s over 30 s windows (rules fire at once by default): let it
    # see a few more healthy evaluations, then no alert may ever have existed in this run.
    time.sleep(4)
    ever = get_json(m.url + "/api/v1/alerts")["alerts"]
    check(not ever, f"alerts during a healthy run: {ever}")
    log("no alert in the whole run")


def run_ui(m, started, web_dir, artifacts):
    """The browser e2e (web/tests/e2e/ui.e2e.mjs) in two groups: `healthy` on the whole mesh, then
    `fault` after one agent is stopped (a real server_down verdict and its alerts), then the mock
    server's shapes against this real server (web/tests/check-mock.mjs)."""
    m.import_topology()
    m.start_agents()
    heartbeats_and_pinglists(m)
    wait_until("matrices filled", lambda: not matrices_filled(m, started) or "not yet", 25, 1.0)
    os.makedirs(artifacts, exist_ok=True)
    env = dict(os.environ, PINGMESH_URL=m.url, PINGMESH_ARTIFACTS=artifacts,
               PINGMESH_TOKEN=ADMIN_TOKEN)
    log(f"web e2e: PINGMESH_URL={m.url} PINGMESH_ARTIFACTS={artifacts}")

    def node(*args, **extra):
        return subprocess.run(["node", *args], cwd=web_dir, env=dict(env, **extra),
                              timeout=300).returncode
    step("web e2e, healthy mesh")
    rc = node("tests/e2e/ui.e2e.mjs", E2E_GROUP="healthy")
    check(rc == 0, f"web e2e (healthy) failed (exit {rc})")

    step("stop one agent: a real fault")
    down = m.servers()[-1]["name"]
    # Liveness down to its minimum so that the agents page shows the stopped agent silent soon.
    st, text = http("PATCH", m.url + "/api/v1/settings", {"liveness_timeout_s": 5},
                    token=ADMIN_TOKEN)
    check(st == 200, f"PATCH /api/v1/settings: HTTP {st}: {text[:300]}")
    p = m.agents.pop(down)
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    log(f"agent {down} stopped (pid {p.pid})")

    def verdict():
        vs = get_json(m.url + "/api/v1/verdicts?active=true")["verdicts"]
        hit = [v for v in vs if v.get("component") == f"server:{down}"]
        return hit[0] if hit else f"verdicts {[v.get('component') for v in vs]}"
    v = wait_until(f"a verdict on server:{down}", verdict, 60, 1.0)
    log(f"verdict: {v.get('kind')} {v.get('component')} {v.get('summary')}")
    step("web e2e, one agent down")
    rc = node("tests/e2e/ui.e2e.mjs", E2E_GROUP="fault", PINGMESH_DOWN_SERVER=down)
    check(rc == 0, f"web e2e (fault) failed (exit {rc})")

    step("mock server shapes against the real server")
    rc = node("tests/check-mock.mjs", "--real", m.url, "--out",
              os.path.join(artifacts, "real-api.json"), "--require-alerts")
    check(rc == 0, "the mock server's responses differ from the real server's (see DIFF lines)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--ui", metavar="WEB_DIR", help="run the web UI e2e against the mesh")
    ap.add_argument("--artifacts", default="ui-artifacts")
    ap.add_argument("--tcp-port", type=int, default=29101)
    ap.add_argument("--http-port", type=int, default=29102)
    a = ap.parse_args()
    install_signal_handlers()

    if a.ui:
        web_dir = os.path.abspath(a.ui)
        if not shutil.which("node"):
            print("SKIPPED: node not found")
            return 0
        chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        if not os.access(chromium, os.X_OK):
            print(f"SKIPPED: {chromium} not found")
            return 0
        if not os.path.isdir(os.path.join(web_dir, "node_modules", "playwright-core")):
            print("SKIPPED: web/node_modules missing (cd web && npm ci)")
            return 0
        if not os.path.isfile(os.path.join(web_dir, "dist", "index.html")):
            print("SKIPPED: web/dist not built (cd web && npm run build)")
            return 0

    workdir = a.workdir or tempfile.mkdtemp(prefix="pingmesh-e2e-")
    t_start = time.monotonic()
    started = time.time() - 60
    m = Mesh(os.path.abspath(a.binary), workdir, topology(tcp_port=a.tcp_port,
             http_port=a.http_port), tcp_port=a.tcp_port, http_port=a.http_port,
             web_dir=os.path.join(os.path.abspath(a.ui), "dist") if a.ui else None)
    ok = False
    try:
        m.start_server()
        if a.ui:
            run_ui(m, started, os.path.abspath(a.ui), os.path.abspath(a.artifacts))
        else:
            run_loopback(m, started)
        ok = True
    except Failure as e:
        log(f"FAILED: {e}")
        log("server log tail:\n" + m.tail("server.log"))
    finally:
        m.close()
        log(f"{'PASSED' if ok else 'FAILED'} in {time.monotonic() - t_start:.1f}s (work dir "
            f"{workdir}{', kept' if (a.keep or not ok) else ''})")
        if ok and not a.keep and not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
