#!/usr/bin/env python3
"""Lab end-to-end test of narrowing fabric loss to one spine by TCP traceroute from the agents
(docs/ANALYZER.md "Narrowing a spine"): the namespace lab (lab/lab.sh, 1 DC x 3 racks x 2 hosts,
2 spines, L3 Clos with ECMP per 5-tuple), the real `pingmesh server` in the root namespace on
10.255.0.1, one real agent per host namespace (tracer polling every 1 s). The DC is imported in
rack mode with its fabric devices: every spine and ToR with its port addresses (IPv4 and IPv6),
from `lab.sh devices`.

Asserts: healthy -> no trace is requested (GET /api/v1/traces empty) and no alert; the DC's
devices come back from the API; a device with a bad address is refused naming the
field (422); `fault loss spine:d1s2 5` -> within 150 s a firing alert and an active verdict naming
`spine:dc1/d1s2`, never one naming `spine:dc1/d1s1`, the trace aggregates show both spines
traced with d1s2's loss above d1s1's, and the agents' logs show the traces; `undo all` and
`lab.sh down`. Needs root and network namespaces; prints "SKIPPED: <reason>" otherwise. Bounded
(~2-3 min); every process started here is killed by PID at the end.

usage: lab_trace_e2e.py --binary PATH --lab lab/lab.sh [--workdir DIR] [--keep-lab]
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesh import (ADMIN_TOKEN, AGENT_TOKEN, Mesh, check, get_json, http, log,  # noqa: E402
                  wait_until)
import labkit  # noqa: E402
from labkit import fabric_devices, lab_cmd  # noqa: E402

LAB_TOPOLOGY = {"dcs": 1, "racks_per_dc": 3, "hosts_per_rack": 2, "spines_per_dc": 2}
LOSSY, HEALTHY = "d1s2", "d1s1"
PROBES = [{"protocol": "tcp", "port": 9001}, {"protocol": "udp", "port": 9001},
          {"protocol": "icmp"}]
HEALTHY_SOAK_S = 12
NARROW_WITHIN_S = 150


class TraceLab(Mesh):
    def __init__(self, binary, workdir, desc):
        super().__init__(binary, workdir, topo={"dcs": [], "racks": [], "servers": []},
                         listen_host="10.255.0.1", min_interval_ms=1000)
        self.desc = desc
        self.hosts = desc["hosts"]

    def register(self, devices):
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


def run(m, lab, env, started):
    m.register(fabric_devices(lab, env, 1))
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
    return labkit.main(__doc__, LAB_TOPOLOGY, TraceLab, run, "pingmesh-lab-trace-e2e-")


if __name__ == "__main__":
    sys.exit(main())
