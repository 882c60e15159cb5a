#!/usr/bin/env python3
"""How many lab hosts this machine holds with every agent probing at 1 s (issue 7).

For each size DCSxRACKSxHOSTS (e.g. 1x4x8 = 32 hosts) the namespace lab is built
(`lab.sh up`, L3 Clos with 2 spines per DC), `pingmesh server` runs on the host side
(10.255.0.1), every DC is registered in rack mode, and one real `pingmesh agent` runs in every
host namespace probing TCP, UDP and ICMP at a 1 s interval per pair (the lab override). After a
warm-up, for --seconds it measures from /proc and the agents' /metrics:
  - probes/s of the whole lab, and the share not answered (timeout/drop/error: false loss on a
    healthy lab, the sign of an overloaded machine);
  - the agents' CPU (sum over all agents, in % of one core, and per agent), RSS per agent;
  - the server's CPU and RSS;
  - the machine's load (share of both cores busy, /proc/stat).
One row per size; a size "holds" when false loss stays below 0.1 % (the paper's alert threshold)
and the machine is not saturated. Takes /tmp/pingmesh-lab.lock itself; tears the lab down.

usage: bench/lab/capacity.py --binary build/src/cmd/pingmesh [--lab lab/lab.sh]
       [--sizes 1x2x4,1x4x8,2x4x8,2x8x8] [--seconds 60] [--warmup 20] [--json FILE]
"""

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from mesh import (ADMIN_TOKEN, AGENT_TOKEN, Failure, Mesh, check, http,  # noqa: E402
                  install_signal_handlers, log, wait_until)

PROBES = [{"protocol": "tcp", "port": 9001}, {"protocol": "udp", "port": 9001},
          {"protocol": "icmp"}]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_rss_mb(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v), idle


class CapacityMesh(Mesh):
    def __init__(self, binary, workdir, hosts):
        super().__init__(binary, workdir, topo={"dcs": [], "racks": [], "servers": []},
                         listen_host="10.255.0.1", min_interval_ms=1000)
        self.hosts = hosts

    def register(self):
        dcs = sorted({h["dc_name"] for h in self.hosts})
        topo = {"settings": {"stopped": False, "liveness_timeout_s": 30},
                "dcs": [{"name": d, "mode": "rack", "probes": PROBES, "interval_ms": 1000}
                        for d in dcs],
                "racks": [{"dc": d, "name": r} for d, r in
                          sorted({(h["dc_name"], h["rack_name"]) for h in self.hosts})],
                "servers": [{"name": h["name"], "dc": h["dc_name"], "rack": h["rack_name"],
                             "addresses": [h["ipv4"]]} for h in self.hosts]}
        st, text = http("PUT", self.url + "/api/v1/topology", topo, token=ADMIN_TOKEN)
        check(st in (200, 204), f"import: HTTP {st}: {text[:300]}")

    def start_agents(self):
        for h in self.hosts:
            args = ["agent", "--server", self.url, "--token", AGENT_TOKEN, "--name", h["name"],
                    "--address", h["ipv4"], "--dc", h["dc_name"],
                    "--lab-min-interval-ms", "1000", "--heartbeat-interval-ms", "5000",
                    "--pull-interval-ms", "5000", "--batch-interval-ms", "2000",
                    "--log-level", "warn"]
            self.agents[h["name"]] = self._spawn(args, f"agent-{h['name']}.log",
                                                 prefix=("ip", "netns", "exec", h["netns"]))

    def outcomes(self, name):
        """{outcome: count} summed over protocols, and the scheduled peers."""
        h = next(x for x in self.hosts if x["name"] == name)
        st, text = http("GET", f"http://{h['ipv4']}:9002/metrics", timeout=5)
        check(st == 200, f"{name} /metrics: HTTP {st}")
        out, peers = {}, 0.0
        for line in text.splitlines():
            if line.startswith("pingmesh_agent_probes_total{"):
                key, _, value = line.rpartition(" ")
                outcome = key.split('outcome="', 1)[1].split('"', 1)[0]
                out[outcome] = out.get(outcome, 0.0) + float(value)
            elif line.startswith("pingmesh_agent_peers "):
                peers = float(line.rpartition(" ")[2])
        return out, peers


def agent_pid(popen):
    """The agent's own pid: `ip netns exec` execs the binary, so it is the Popen's pid."""
    return popen.pid


def measure(m, seconds):
    names = list(m.agents)
    pids = {n: agent_pid(m.agents[n]) for n in names}
    before = {n: m.outcomes(n)[0] for n in names}
    cpu0 = {n: proc_cpu_s(p) for n, p in pids.items()}
    srv0 = proc_cpu_s(m.server.pid)
    tot0, idle0 = machine_busy()
    t0 = time.monotonic()
    time.sleep(seconds)
    m.check_agents_running()
    dt = time.monotonic() - t0
    tot1, idle1 = machine_busy()
    cpu1 = {n: proc_cpu_s(p) for n, p in pids.items()}
    srv1 = proc_cpu_s(m.server.pid)
    after, peers = {}, {}
    for n in names:
        after[n], peers[n] = m.outcomes(n)
    probes = sum(sum(after[n].values()) - sum(before[n].values()) for n in names)
    ok = sum(after[n].get("ok", 0) - before[n].get("ok", 0) for n in names)
    agent_cpu = {n: (cpu1[n] - cpu0[n]) / dt * 100 for n in names}
    rss = [proc_rss_mb(p) for p in pids.values()]
    return {
        "hosts": len(names),
        "peers_per_agent": statistics.median(peers.values()),
        "probes_per_s": probes / dt,
        "not_answered_pct": (probes - ok) / probes * 100 if probes else None,
        "agents_cpu_pct_of_core": sum(agent_cpu.values()),
        "agent_cpu_pct_median": statistics.median(agent_cpu.values()),
        "agent_cpu_pct_max": max(agent_cpu.values()),
        "agent_rss_mb_median": statistics.median(rss),
        "agent_rss_mb_max": max(rss),
        "server_cpu_pct_of_core": (srv1 - srv0) / dt * 100,
        "server_rss_mb": proc_rss_mb(m.server.pid),
        "machine_busy_pct": (1 - (idle1 - idle0) / max(1, tot1 - tot0)) * 100,
        "seconds": dt,
    }


def run_size(args, size, workdir):
    dcs, racks, hosts = (int(x) for x in size.split("x"))
    env = dict(os.environ, PMLAB_RUN_DIR=workdir)
    topo_file = os.path.join(workdir, "lab-topology.json")
    with open(topo_file, "w") as f:
        json.dump({"dcs": dcs, "racks_per_dc": racks, "hosts_per_rack": hosts,
                   "spines_per_dc": 2, "inter_dc_delay_us": 500}, f)
    r = subprocess.run([args.lab, "up", topo_file], capture_output=True, text=True,
                       timeout=900, env=env)
    check(r.returncode == 0, f"lab up {size}: {r.stderr[-1500:]}")
    m = None
    try:
        with open(os.path.join(workdir, "hosts.json")) as f:
            lab_hosts = json.load(f)["hosts"]
        m = CapacityMesh(os.path.abspath(args.binary), workdir, lab_hosts)
        m.start_server()
        m.register()
        m.start_agents()
        log(f"{size}: {len(m.agents)} agents started; warm-up {args.warmup}s")

        def all_probing():
            m.check_agents_running()
            return all(m.outcomes(n)[1] > 0 for n in m.agents)
        wait_until("every agent has its pinglist", all_probing, 120, 2)
        time.sleep(args.warmup)
        row = measure(m, args.seconds)
        row["size"] = size
        log(json.dumps(row))
        return row
    finally:
        if m:
            m.close()
        subprocess.run([args.lab, "down"], capture_output=True, text=True, timeout=300, env=env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--lab", default=os.path.join(REPO, "lab", "lab.sh"))
    ap.add_argument("--sizes", default="1x2x4,1x4x8,2x4x8,2x8x8")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIPPED: needs root (network namespaces)")
        return 0
    install_signal_handlers()
    lock = open("/tmp/pingmesh-lab.lock", "w")
    log("waiting for the lab lock /tmp/pingmesh-lab.lock")
    fcntl.flock(lock, fcntl.LOCK_EX)
    rows = []
    try:
        for size in args.sizes.split(","):
            workdir = tempfile.mkdtemp(prefix=f"pingmesh-capacity-{size}-")
            rows.append(run_size(args, size, workdir))
    except Failure as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    print("\n| hosts | peers/agent | probes/s | not answered | agents CPU (% of a core) | "
          "per agent median / max | agent RSS median / max | server CPU | machine busy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} = {r['hosts']} | {r['peers_per_agent']:.0f} | "
              f"{r['probes_per_s']:.0f} | {r['not_answered_pct']:.3f} % | "
              f"{r['agents_cpu_pct_of_core']:.1f} % | {r['agent_cpu_pct_median']:.2f} / "
              f"{r['agent_cpu_pct_max']:.2f} % | {r['agent_rss_mb_median']:.1f} / "
              f"{r['agent_rss_mb_max']:.1f} MB | {r['server_cpu_pct_of_core']:.1f} % | "
              f"{r['machine_busy_pct']:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
