#!/usr/bin/env python3
"""Lab end-to-end test of narrowing fabric loss to one spine by TCP traceroute from the agents
(docs/ANALYZER.md "Narrowing a spine"): the namespace lab (lab/lab.sh, 1 DC x 3 racks x 2 hosts,
2 spines, L3 Clos with ECMP per 5-tuple), the real `pingmesh server` in the root namespace on
10.255.0.1, one real agent per host namespace (tracer polling every 1 s). The DC is imported in
rack mode with its fabric devices: every spine and ToR with its port addresses (IPv4 and IPv6)
from the lab's hosts.json.

Asserts: healthy -> no trace is requested (GET /api/v1/traces empty) and no alert; the DC's
devices come back from the API; a device with a bad address is refused naming the
field (422); `fault loss spine:d1s2 5` -> within 150 s a firing alert and an active verdict naming
`spine:dc1/d1s2`, never one naming `spine:dc1/d1s1`, the trace aggregates show both spines
traced with d1s2's loss above d1s1's, and the agents' logs show the traces; `undo all` and
`lab.sh down`. Needs root and network namespaces; prints "SKIPPED: <reason>" otherwise. Bounded
(~2-3 min); every process started here is killed by PID at the end.

usage: lab_trace_e2e.py --binary PATH --lab lab/lab.sh [--workdir DIR] [--keep-lab]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesh import (ADMIN_TOKEN, AGENT_TOKEN, Failure, Mesh, check, get_json, http,  # noqa: E402
                  install_signal_handlers, log, wait_until)

LAB_TOPOLOGY = {"dcs": 1, "racks_per_dc": 3, "hosts_per_rack": 2, "spines_per_dc": 2}
LOSSY, HEALTHY = "d1s2", "d1s1"
PROBES = [{"protocol": "tcp", "port": 9001}, {"protocol": "udp", "port": 9001},
          {"protocol": "icmp"}]
HEALTHY_SOAK_S = 12
NARROW_WITHIN_S = 150


def skip_reason(lab):
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    if not os.access(lab, os.X_OK):
        return f"{lab} not executable"
    r = subprocess.run(["ip", "netns", "add", "pm-e2e-probe"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", "pm-e2e-probe"], capture_output=True)
    takeover = os.environ.get("CI") == "true" or os.environ.get("PMLAB_TEST_TAKEOVER") == "1"
    if os.path.exists("/run/pmlab/state.json") and not takeover:
        return "a lab is already up on this machine (someone's demo?); set PMLAB_TEST_TAKEOVER=1"
    return None


def lab_cmd(lab, env, *args, timeout=120):
    r = subprocess.run([lab, *args], capture_output=True, text=True, timeout=timeout, env=env)
    check(r.returncode == 0, f"lab.sh {' '.join(args)}: exit {r.returncode}: {r.stderr[-1500:]}"
          f"{r.stdout[-500:]}")
    return (r.stdout + r.stderr).strip() or "(no output)"


def fabric_devices(desc, dc):
    """The DC's spines and ToRs with every port address, as the API's `devices`."""
    layers = {"spine": "spine", "tor": "tor"}
    out = []
    for r in desc["routers"]:
        if r["dc"] != dc or r["role"] not in layers:
            continue
        addrs = []
        for p in r["ports"].values():
            for fam in ("ipv4", "ipv6"):
                a = p.get(fam)
                if a:
                    a = a.split("/")[0]
                    if not a.startswith("fe80") and a not in addrs:
                        addrs.append(a)
        out.append({"name": r["name"], "layer": layers[r["role"]], "addresses": addrs})
    return sorted(out, key=lambda d: d["name"])


class TraceLab(Mesh):
    def __init__(self, binary, workdir, desc):
        super().__init__(binary, workdir, topo={"dcs": [], "racks": [], "servers": []},
                         listen_host="10.255.0.1", min_interval_ms=1000)
        self.desc = desc
        self.hosts = desc["hosts"]

    def register(self):
        devices = fabric_devices(self.desc, 1)
        check(sum(d["layer"] == "spine" for d in devices) == 2, f"lab spines: {devices}")
        topo = {"settings": {"stopped": False, "liveness_timeout_s": 30},
                "dcs": [{"name": "dc1", "mode": "rack", "probes": PROBES, "interval_ms": 1000,
                         "devices": devices}],
                "racks": [{"dc": "dc1", "name": r}
                          for r in sorted({h["rack_name"] for h in self.hosts})],
                "servers": [{"name": h["name"], "dc": "dc1", "rack": h["rack_name"],
                             "addresses": [h["ipv4"], h["ipv6"]]} for h in self.hosts]}
        st, text = http("PUT", self.url + "/api/v1/topology", topo, token=ADMIN_TOKEN)
        check(st in (200, 204), f"import: HTTP {st}: {text[:300]}")
        got = get_json(self.url + "/api/v1/dcs/dc1")
        check(sorted(got.get("devices", []), key=lambda d: d["name"]) == devices,
              f"devices read back: {got.get('devices')}")
        bad = [dict(devices[0], addresses=["100.64.0.300"])]
        st, text = http("PATCH", self.url + "/api/v1/dcs/dc1", {"devices": bad},
                        token=ADMIN_TOKEN)
        check(st in (400, 422) and "devices[0].addresses[0]" in text,
              f"bad device address: HTTP {st}: {text[:300]}")
        log(f"registered dc1 with {len(devices)} devices: "
            + ", ".join(f"{d['name']}({len(d['addresses'])})" for d in devices))

    def start_agents(self):
        for h in self.hosts:
            args = ["agent", "--server", self.url, "--token", AGENT_TOKEN, "--name", h["name"],
                    "--address", h["ipv4"], "--address", h["ipv6"], "--dc", h["dc_name"],
                    "--lab-min-interval-ms", "1000", "--heartbeat-interval-ms", "1000",
                    "--pull-interval-ms", "1000", "--batch-interval-ms", "1000",
                    "--trace-interval-ms", "1000", "--log-level", "info"]
            self.agents[h["name"]] = self._spawn(args, f"agent-{h['name']}.log",
                                                 prefix=("ip", "netns", "exec", h["netns"]))
        log(f"started {len(self.agents)} agents in their namespaces")


def spine_components(items):
    return {(x.get("labels") or {}).get("component", "") for x in items} | {
        x.get("component", "") for x in items}


def run(m, lab, env):
    m.register()
    m.start_agents()

    def alive():
        m.check_agents_running()
        srv = get_json(m.url + "/api/v1/servers?limit=1000")["items"]
        seen = [s for s in srv if s.get("alive")]
        return len(seen) == len(m.hosts) or f"{len(seen)} of {len(m.hosts)} agents alive"
    wait_until("every agent alive", alive, 30, 1.0)
    log(f"--- healthy for {HEALTHY_SOAK_S}s")
    time.sleep(HEALTHY_SOAK_S)
    traces = get_json(m.url + "/api/v1/traces")
    check(traces["dcs"] == {}, f"traces requested while healthy: {traces}")
    check(m.active_alerts() == [], f"alerts while healthy: {m.active_alerts()}")

    log(f"--- fault: 5 % loss on spine {LOSSY}")
    log(lab_cmd(lab, env, "fault", "loss", f"spine:{LOSSY}", "5"))
    t0 = time.monotonic()
    seen_components = set()

    def narrowed():
        active = m.active_alerts()
        verdicts = get_json(m.url + "/api/v1/verdicts?active=true")
        verdicts = verdicts.get("verdicts", verdicts) if isinstance(verdicts, dict) else verdicts
        seen_components.update(spine_components(active) | spine_components(verdicts))
        check(f"spine:dc1/{HEALTHY}" not in seen_components,
              f"the healthy spine was blamed: {sorted(seen_components)}")
        firing = [x for x in active if x.get("state") == "firing"
                  and (x.get("labels") or {}).get("component") == f"spine:dc1/{LOSSY}"]
        verdict = [v for v in verdicts if v.get("component") == f"spine:dc1/{LOSSY}"]
        if firing and verdict:
            return firing[0], verdict[0]
        return ("not yet; components seen: " + json.dumps(sorted(seen_components))
                + "; traces: " + json.dumps(get_json(m.url + "/api/v1/traces"))[:600])
    alert, verdict = wait_until(f"an alert naming spine:dc1/{LOSSY}", narrowed,
                                NARROW_WITHIN_S, 2.0)
    log(f"after {time.monotonic() - t0:.0f}s: {alert['labels']}: "
        f"{(alert.get('annotations') or {}).get('summary')}")
    log("verdict evidence: " + json.dumps(verdict.get("evidence", {}).get("traceroute"))[:400])
    spines = {s["spine"]: s for s in get_json(m.url + "/api/v1/traces")["dcs"]["dc1"]["spines"]}
    check(set(spines) == {LOSSY, HEALTHY}, f"traced spines: {spines}")
    rate = {k: s["lost"] / max(1, s["probes"]) for k, s in spines.items()}
    check(rate[LOSSY] > rate[HEALTHY], f"traced loss: {spines}")
    log(f"traced: {json.dumps(spines)}")
    traced = sum("tracer: traced" in m.tail(f"agent-{h['name']}.log", 400) for h in m.hosts)
    check(traced > 0, "no agent logged a trace")
    # A few more seconds: the healthy spine must stay unblamed.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        active = m.active_alerts()
        check(f"spine:dc1/{HEALTHY}" not in spine_components(active),
              f"the healthy spine was blamed: {[a.get('labels') for a in active]}")
        time.sleep(2)
    lab_cmd(lab, env, "undo", "all")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--lab", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--keep-lab", action="store_true")
    a = ap.parse_args()
    lab = os.path.abspath(a.lab)
    reason = skip_reason(lab)
    if reason:
        print(f"SKIPPED: {reason}")
        return 0
    install_signal_handlers()
    workdir = a.workdir or tempfile.mkdtemp(prefix="pingmesh-lab-trace-e2e-")
    env = dict(os.environ, PMLAB_RUN_DIR=workdir)
    t_start = time.monotonic()
    m = None
    ok = False
    try:
        topo_file = os.path.join(workdir, "lab-topology.json")
        with open(topo_file, "w") as f:
            json.dump(LAB_TOPOLOGY, f)
        log("--- lab up")
        log(lab_cmd(lab, env, "up", topo_file).strip().splitlines()[-1])
        with open(os.path.join(workdir, "hosts.json")) as f:
            desc = json.load(f)
        m = TraceLab(os.path.abspath(a.binary), workdir, desc)
        m.start_server()
        run(m, lab, env)
        ok = True
    except (Failure, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
        log(f"FAILED: {type(e).__name__}: {e}")
        if m:
            log("server log tail:\n" + m.tail("server.log"))
            if m.hosts:
                log("first agent log tail:\n" + m.tail(f"agent-{m.hosts[0]['name']}.log"))
    finally:
        if m:
            m.close()
        if not a.keep_lab:
            r = subprocess.run([lab, "down"], capture_output=True, text=True, timeout=60, env=env)
            log(f"lab down: exit {r.returncode}")
        log(f"{'PASSED' if ok else 'FAILED'} in {time.monotonic() - t_start:.1f}s "
            f"(work dir {workdir})")
        if ok and not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
