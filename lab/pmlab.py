#!/usr/bin/env python3
"""pingmesh lab: a multi-DC L3 Clos fabric of Linux network namespaces, with fault injection.

Entry point is lab/lab.sh; see docs/LAB.md for the design, addressing and the fault catalogue.
Python 3 standard library only. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for `ip netns`).
"""

import argparse
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

PREFIX = "pm-"
LAB_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(LAB_DIR)
RUN_DIR = os.environ.get("PMLAB_RUN_DIR", os.path.join(LAB_DIR, "run"))
# Machine-wide state: namespaces are machine-wide, so is what describes them (tmpfs, gone on reboot).
STATE_DIR = os.environ.get("PMLAB_STATE_DIR", "/run/pmlab")
STATE_FILE = os.path.join(STATE_DIR, "state.json")
SYSCTL_SAVED = os.path.join(STATE_DIR, "sysctl.saved.json")

SERVER_DEV = "pm-srv"
SERVER_V4 = "10.255.0.1"
SERVER_V6 = "fd00:ff::1"
SERVER_PEER_V4 = "10.255.0.2"
SERVER_PEER_V6 = "fd00:ff::2"

MAX_DCS = 60
MAX_RACKS = 250
MAX_HOSTS = 250
MAX_SPINES = 64
# Five-tuple hash fields: src ip, dst ip, ip proto, src port, dst port (0x37, no flow label).
HASH_FIELDS = 0x37
NEIGH_RAISE_ABOVE_HOSTS = 100
WORKERS = 4


class LabError(Exception):
    pass


def log(msg):
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def run(cmd, input=None, check=True, capture=True):
    p = subprocess.run(cmd, input=input, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and p.returncode != 0:
        raise LabError(f"command failed ({p.returncode}): {' '.join(cmd)}\n"
                       f"{(p.stderr or '').strip()}")
    return p


def ns_sh(ns, script, check=True):
    return run(["ip", "netns", "exec", ns, "sh", "-c", script], check=check)


def ip_batch(ns, lines, check=True):
    cmd = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
    return run(cmd, input="\n".join(lines) + "\n", check=check)


def parallel(fn, items):
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=WORKERS) as ex:
        return list(ex.map(fn, items))


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


class Lock:
    """Machine-wide lock: one lab per machine, one lab command at a time."""

    def __enter__(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        self.f = open(os.path.join(STATE_DIR, "lock"), "w")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


# ---------------------------------------------------------------------------------------------
# Topology


def parse_flat_yaml(text):
    """The subset of YAML a topology needs: `key: value` lines, `#` comments, and a `dcs:` list
    of `- key: value` mappings."""
    out, cur_list, cur = {}, None, None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        stripped = line.strip()
        if stripped.startswith("- "):
            if cur_list is None:
                raise LabError(f"topology: list item outside a list: {raw!r}")
            cur = {}
            out[cur_list].append(cur)
            stripped = stripped[2:]
        key, sep, val = stripped.partition(":")
        if not sep:
            raise LabError(f"topology: expected key: value, got {raw!r}")
        key, val = key.strip(), val.strip()
        if line.startswith((" ", "\t")) and cur is not None:
            cur[key] = _scalar(val)
        elif val == "":
            out[key], cur_list, cur = [], key, None
        else:
            out[key], cur_list, cur = _scalar(val), None, None
    return out


def _scalar(v):
    v = v.strip().strip('"').strip("'")
    try:
        return int(v)
    except ValueError:
        return v


def load_topology(spec):
    """spec: a JSON or YAML file, or DCSxRACKSxHOSTS (e.g. 2x2x2)."""
    if not os.path.isfile(spec):
        for cand in (os.path.join(LAB_DIR, "topologies", spec + ext)
                     for ext in ("", ".json", ".yaml", ".yml")):
            if os.path.isfile(cand):
                spec = cand
                break
    if os.path.isfile(spec):
        text = open(spec).read()
        raw = parse_flat_yaml(text) if spec.endswith((".yaml", ".yml")) else json.loads(text)
    else:
        parts = spec.split("x")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise LabError(f"no topology file {spec!r} (or give DCSxRACKSxHOSTS, e.g. 2x2x2)")
        raw = {"dcs": int(parts[0]), "racks_per_dc": int(parts[1]),
               "hosts_per_rack": int(parts[2])}
    return normalize_topology(raw)


def normalize_topology(raw):
    spines = int(raw.get("spines_per_dc", 2))
    racks = int(raw.get("racks_per_dc", 2))
    hosts = int(raw.get("hosts_per_rack", 2))
    dcs_raw = raw.get("dcs", 1)
    if isinstance(dcs_raw, int):
        dcs_raw = [{} for _ in range(dcs_raw)]
    dcs = []
    for i, d in enumerate(dcs_raw, start=1):
        dc = {"dc": i, "name": str(d.get("name", f"dc{i}")),
              "racks": int(d.get("racks", racks)),
              "hosts_per_rack": int(d.get("hosts_per_rack", hosts)),
              "spines": int(d.get("spines", spines))}
        if not 1 <= dc["racks"] <= MAX_RACKS:
            raise LabError(f"topology: racks per DC must be 1..{MAX_RACKS}")
        if not 1 <= dc["hosts_per_rack"] <= MAX_HOSTS:
            raise LabError(f"topology: hosts per rack must be 1..{MAX_HOSTS}")
        if not 2 <= dc["spines"] <= MAX_SPINES:
            raise LabError(f"topology: spines per DC must be 2..{MAX_SPINES}")
        dcs.append(dc)
    if not 1 <= len(dcs) <= MAX_DCS:
        raise LabError(f"topology: 1..{MAX_DCS} DCs")
    return {"dcs": dcs,
            "inter_dc_delay_us": int(raw.get("inter_dc_delay_us", 0)),
            "inter_dc_jitter_us": int(raw.get("inter_dc_jitter_us", 0))}


# ---------------------------------------------------------------------------------------------
# Plan: every node, link and address, derived deterministically from the topology.


def v6(*groups, host=None):
    g = ":".join(f"{x:x}" for x in groups)
    return f"{g}::{host:x}" if host is not None else f"{g}::"


def plan(topo):
    nodes, links = {}, []

    def node(name, role, **kw):
        nodes[name] = dict(name=name, role=role, netns=PREFIX + name, ports={}, **kw)
        return nodes[name]

    def link(kind, a, adev, b, bdev, a4=None, b4=None, a6=None, b6=None, plen4=31, plen6=64):
        nodes[a]["ports"][adev] = dict(peer=b, peer_dev=bdev, v4=a4, v6=a6, peer_v4=b4,
                                      peer_v6=b6, plen4=plen4, plen6=plen6, kind=kind)
        nodes[b]["ports"][bdev] = dict(peer=a, peer_dev=adev, v4=b4, v6=b6, peer_v4=a4,
                                      peer_v6=a6, plen4=plen4, plen6=plen6, kind=kind)
        links.append(dict(kind=kind, a=a, a_dev=adev, b=b, b_dev=bdev))

    ndc = len(topo["dcs"])
    for dc in topo["dcs"]:
        d = dc["dc"]
        border = f"d{d}b"
        node(border, "border", dc=d)
        spines = [f"d{d}s{s}" for s in range(1, dc["spines"] + 1)]
        for s, spine in enumerate(spines, start=1):
            node(spine, "spine", dc=d, spine=s)
            link("spine-border", spine, "bdr", border, f"s{s}",
                 f"100.{64 + d}.0.{2 * s - 2}", f"100.{64 + d}.0.{2 * s - 1}",
                 v6(0xfd01, d, 0, s, host=1), v6(0xfd01, d, 0, s, host=2))
        for r in range(1, dc["racks"] + 1):
            tor = f"d{d}r{r}t"
            node(tor, "tor", dc=d, rack=r, rack_name=f"d{d}r{r}")
            for s, spine in enumerate(spines, start=1):
                link("tor-spine", tor, f"s{s}", spine, f"r{r}",
                     f"100.{64 + d}.{r}.{2 * s - 2}", f"100.{64 + d}.{r}.{2 * s - 1}",
                     v6(0xfd01, d, r, s, host=1), v6(0xfd01, d, r, s, host=2))
            for h in range(1, dc["hosts_per_rack"] + 1):
                host = f"d{d}r{r}h{h}"
                node(host, "host", dc=d, rack=r, host=h, rack_name=f"d{d}r{r}", tor=tor,
                     ipv4=f"10.{d}.{r}.{h}", ipv6=v6(0xfd00, d, r, host=h))
                link("host", host, "eth0", tor, f"h{h}", f"10.{d}.{r}.{h}", f"10.{d}.{r}.254",
                     v6(0xfd00, d, r, host=h), "fe80::1", plen4=24)
    for a in range(1, ndc + 1):
        for b in range(a + 1, ndc + 1):
            link("inter-dc", f"d{a}b", f"d{b}", f"d{b}b", f"d{a}",
                 f"100.127.{a}.{2 * b}", f"100.127.{a}.{2 * b + 1}",
                 v6(0xfd02, a, b, host=1), v6(0xfd02, a, b, host=2))
    return nodes, links


def node_config(topo, nodes, name):
    """ip -batch lines that (re)configure one namespace; idempotent (replace)."""
    n = nodes[name]
    L = ["link set lo up"]
    for dev in n["ports"]:
        L.append(f"link set {dev} up")
    role = n["role"]
    if role == "host":
        p = n["ports"]["eth0"]
        # The rack prefix without its on-link route: every packet goes to the ToR, as on a
        # routed ToR; the fabric routes the rack's /24 and /64.
        L += [f"addr replace {p['v4']}/24 dev eth0 noprefixroute",
              f"addr replace {p['v6']}/64 dev eth0 nodad noprefixroute",
              f"route replace default via {p['peer_v4']} dev eth0 onlink",
              "route replace default via fe80::1 dev eth0"]
        return L
    for dev, p in n["ports"].items():
        if p["kind"] == "host":  # ToR port facing a host
            L += [f"addr replace {p['v4']}/32 dev {dev}",
                  f"addr replace fe80::1/64 dev {dev} nodad",
                  f"route replace {p['peer_v4']}/32 dev {dev}",
                  f"route replace {p['peer_v6']}/128 dev {dev}"]
        else:
            L += [f"addr replace {p['v4']}/{p['plen4']} dev {dev}",
                  f"addr replace {p['v6']}/{p['plen6']} dev {dev} nodad"]
    d = n["dc"]

    def multipath(dests, fam):
        hops = " ".join(f"nexthop via {n['ports'][dev]['peer_' + fam]} dev {dev}"
                        for dev in dests)
        return hops

    if role == "tor":
        r = n["rack"]
        ups = sorted((dev for dev, p in n["ports"].items() if p["kind"] == "tor-spine"),
                     key=lambda x: int(x[1:]))
        L += [f"route replace default {multipath(ups, 'v4')}",
              f"route replace default {multipath(ups, 'v6')}",
              # A host whose link is down must not send its traffic back up the default route.
              f"route replace unreachable 10.{d}.{r}.0/24 metric 4000",
              f"route replace unreachable {v6(0xfd00, d, r)}/64 metric 4000"]
    elif role == "spine":
        for dev, p in n["ports"].items():
            if p["kind"] == "tor-spine":
                r = int(dev[1:])
                L += [f"route replace 10.{d}.{r}.0/24 via {p['peer_v4']} dev {dev}",
                      f"route replace {v6(0xfd00, d, r)}/64 via {p['peer_v6']} dev {dev}"]
        up = n["ports"]["bdr"]
        L += [f"route replace default via {up['peer_v4']} dev bdr",
              f"route replace default via {up['peer_v6']} dev bdr",
              f"route replace unreachable 10.{d}.0.0/16 metric 4000",
              f"route replace unreachable {v6(0xfd00, d)}/32 metric 4000"]
    elif role == "border":
        downs = sorted((dev for dev, p in n["ports"].items() if p["kind"] == "spine-border"),
                       key=lambda x: int(x[1:]))
        L += [f"route replace 10.{d}.0.0/16 {multipath(downs, 'v4')}",
              f"route replace {v6(0xfd00, d)}/32 {multipath(downs, 'v6')}"]
        for dev, p in n["ports"].items():
            if p["kind"] == "inter-dc":
                e = int(dev[1:])
                L += [f"route replace 10.{e}.0.0/16 via {p['peer_v4']} dev {dev}",
                      f"route replace {v6(0xfd00, e)}/32 via {p['peer_v6']} dev {dev}"]
                if e == 1:
                    L += [f"route replace 10.255.0.0/24 via {p['peer_v4']} dev {dev}",
                          f"route replace fd00:ff::/64 via {p['peer_v6']} dev {dev}"]
        if d == 1:
            L += [f"addr replace {SERVER_PEER_V4}/24 dev srv",
                  f"addr replace {SERVER_PEER_V6}/64 dev srv nodad",
                  "link set srv up"]
    return L


def sysctl_script(role):
    w = {"net/ipv6/conf/all/accept_dad": 0, "net/ipv6/conf/default/accept_dad": 0,
         "net/ipv6/conf/all/keep_addr_on_down": 1, "net/ipv6/conf/default/keep_addr_on_down": 1,
         "net/ipv6/conf/all/accept_ra": 0, "net/ipv6/conf/default/accept_ra": 0,
         "net/ipv6/conf/all/router_solicitations": 0,
         "net/ipv6/conf/default/router_solicitations": 0,
         "net/ipv4/conf/all/rp_filter": 0, "net/ipv4/conf/default/rp_filter": 0,
         "net/ipv4/icmp_ratelimit": 0, "net/ipv6/icmp/ratelimit": 0}
    if role != "host":
        w.update({"net/ipv4/ip_forward": 1, "net/ipv6/conf/all/forwarding": 1,
                  "net/ipv4/fib_multipath_hash_policy": 3,
                  "net/ipv4/fib_multipath_hash_fields": HASH_FIELDS,
                  "net/ipv6/fib_multipath_hash_policy": 3,
                  "net/ipv6/fib_multipath_hash_fields": HASH_FIELDS,
                  "net/ipv4/conf/all/ignore_routes_with_linkdown": 1,
                  "net/ipv4/conf/default/ignore_routes_with_linkdown": 1,
                  "net/ipv6/conf/all/ignore_routes_with_linkdown": 1,
                  "net/ipv6/conf/default/ignore_routes_with_linkdown": 1})
    required = {"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding",
                "net/ipv4/fib_multipath_hash_policy", "net/ipv6/fib_multipath_hash_policy"}
    lines = []
    for k, v in w.items():
        if k in required:
            lines.append(f"echo {v} > /proc/sys/{k}")
        else:
            lines.append(f"echo {v} > /proc/sys/{k} 2>/dev/null || true")
    return "set -e\n" + "\n".join(lines) + "\n"


def rps_mask():
    n = os.cpu_count() or 1
    mask = (1 << n) - 1
    words = []
    while True:
        words.append(f"{mask & 0xffffffff:x}")
        mask >>= 32
        if not mask:
            break
    return ",".join(reversed(words))


def post_script(node):
    s = [f"for f in /sys/class/net/*/queues/rx-*/rps_cpus; do echo {rps_mask()} > $f "
         "2>/dev/null || true; done"]
    devs = []
    if node["role"] == "host":
        devs = ["eth0"]
    elif node["role"] == "tor":
        devs = [d for d, p in node["ports"].items() if p["kind"] == "host"]
    if devs:
        # Injected loss must hit single wire-size packets, not 64 KB super-packets.
        s.append("if command -v ethtool >/dev/null; then " + "; ".join(
            f"ethtool -K {d} tso off gso off >/dev/null 2>&1 || true" for d in devs) + "; fi")
    return "\n".join(s) + "\n"


# ---------------------------------------------------------------------------------------------
# Root-namespace sysctls (the neighbour table is shared by every namespace).


def read_sysctl(key):
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().strip()


def write_sysctl(key, val):
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(str(val))


def raise_neigh(n_nodes):
    keys = [f"net.{fam}.neigh.default.gc_thresh{i}" for fam in ("ipv4", "ipv6")
            for i in (1, 2, 3)]
    saved = read_json(SYSCTL_SAVED) or {}
    want = {1: 4 * n_nodes, 2: 8 * n_nodes, 3: 16 * n_nodes}
    for k in keys:
        cur = int(read_sysctl(k))
        if k not in saved:
            saved[k] = cur
        target = max(int(saved[k]), want[int(k[-1])])
        if cur != target:
            write_sysctl(k, target)
    write_json(SYSCTL_SAVED, saved)
    log(f"raised neighbour gc_thresh1..3 for {n_nodes} nodes (restored by down)")


def restore_sysctls():
    saved = read_json(SYSCTL_SAVED)
    if not saved:
        return
    for k, v in saved.items():
        try:
            write_sysctl(k, v)
        except OSError as e:
            log(f"could not restore {k}={v}: {e}")
    os.unlink(SYSCTL_SAVED)
    log("restored neighbour sysctls")


# ---------------------------------------------------------------------------------------------
# up / down / status


def lab_namespaces():
    p = run(["ip", "netns", "list"], check=False)
    return sorted(line.split()[0] for line in p.stdout.splitlines()
                  if line.startswith(PREFIX))


def root_pm_links():
    p = run(["ip", "-o", "link", "show"], check=False)
    out = []
    for line in p.stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(PREFIX):
                out.append(name)
    return out


def check_root_routes(topo):
    """Refuse to start when the machine already routes one of the lab's prefixes."""
    ours = [ipaddress.ip_network(f"10.{dc['dc']}.0.0/16") for dc in topo["dcs"]]
    ours += [ipaddress.ip_network(v6(0xfd00, dc["dc"]) + "/32") for dc in topo["dcs"]]
    ours += [ipaddress.ip_network("10.255.0.0/24"), ipaddress.ip_network("fd00:ff::/64")]
    for fam in ("-4", "-6"):
        p = run(["ip", "-j", fam, "route", "show", "table", "all"], check=False)
        try:
            routes = json.loads(p.stdout or "[]")
        except json.JSONDecodeError:
            continue
        for r in routes:
            dst, dev = r.get("dst", ""), r.get("dev", "")
            if dst in ("default", "") or dev.startswith(PREFIX) or r.get("type") in (
                    "local", "broadcast", "multicast", "anycast"):
                continue
            try:
                net = ipaddress.ip_network(dst if "/" in dst else
                                           dst + ("/32" if ":" not in dst else "/128"),
                                           strict=False)
            except ValueError:
                continue
            for o in ours:
                if o.version == net.version and o.overlaps(net):
                    raise LabError(f"the machine already routes {dst} (dev {dev}), which "
                                   f"overlaps the lab's {o}; refusing to start")


def have_netem():
    ns = PREFIX + "probe-netem"
    run(["ip", "netns", "add", ns], check=False)
    try:
        run(["ip", "-n", ns, "link", "set", "lo", "up"], check=False)
        p = run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                 "delay", "1ms"], check=False)
        return p.returncode == 0
    finally:
        run(["ip", "netns", "del", ns], check=False)


def describe(topo, nodes):
    hosts, racks, routers = [], [], []
    for n in nodes.values():
        if n["role"] == "host":
            d = topo["dcs"][n["dc"] - 1]
            tor = nodes[n["tor"]]
            hosts.append({"name": n["name"], "dc": n["dc"], "dc_name": d["name"],
                          "rack": n["rack"], "rack_name": n["rack_name"], "host": n["host"],
                          "netns": n["netns"], "dev": "eth0", "ipv4": n["ipv4"],
                          "ipv6": n["ipv6"], "ipv4_prefix": f"10.{n['dc']}.{n['rack']}.0/24",
                          "ipv6_prefix": v6(0xfd00, n["dc"], n["rack"]) + "/64",
                          "gateway_v4": f"10.{n['dc']}.{n['rack']}.254",
                          "gateway_v6": "fe80::1", "tor": n["tor"], "tor_netns": tor["netns"],
                          "tor_port": n["ports"]["eth0"]["peer_dev"],
                          "spines": [f"d{n['dc']}s{s}" for s in range(1, d["spines"] + 1)]})
        else:
            r = {"name": n["name"], "role": n["role"], "netns": n["netns"], "dc": n["dc"],
                 "ports": {dev: {"peer": p["peer"], "peer_dev": p["peer_dev"],
                                 "ipv4": p["v4"], "ipv6": p["v6"]}
                           for dev, p in n["ports"].items()}}
            if n["role"] == "tor":
                r["rack"] = n["rack"]
                racks.append({"name": n["rack_name"], "dc": n["dc"], "rack": n["rack"],
                              "tor": n["name"], "ipv4_prefix": f"10.{n['dc']}.{n['rack']}.0/24",
                              "ipv6_prefix": v6(0xfd00, n["dc"], n["rack"]) + "/64"})
            routers.append(r)
    dcs = [{"dc": d["dc"], "name": d["name"], "racks": d["racks"],
            "hosts_per_rack": d["hosts_per_rack"],
            "spines": [f"d{d['dc']}s{s}" for s in range(1, d["spines"] + 1)],
            "border": f"d{d['dc']}b", "ipv4_prefix": f"10.{d['dc']}.0.0/16",
            "ipv6_prefix": v6(0xfd00, d["dc"]) + "/32"} for d in topo["dcs"]]
    return {"version": 1, "prefix": PREFIX,
            "server": {"ipv4": SERVER_V4, "ipv6": SERVER_V6, "dev": SERVER_DEV,
                       "netns": None, "attached_to": "d1b"},
            "inter_dc_delay_us": topo["inter_dc_delay_us"],
            "inter_dc_jitter_us": topo["inter_dc_jitter_us"],
            "dcs": dcs, "racks": racks, "hosts": hosts, "routers": routers}


def cmd_up(args):
    topo = load_topology(args.topology)
    nodes, links = plan(topo)
    with Lock():
        st = read_json(STATE_FILE)
        if st and st.get("topology") == topo and st.get("complete") and \
                set(lab_namespaces()) >= {n["netns"] for n in nodes.values()}:
            log("lab already up with this topology")
            write_outputs(st)
            return 0
        if st or lab_namespaces() or root_pm_links():
            log("removing the previous lab first")
            teardown()
        check_root_routes(topo)
        t0 = time.monotonic()
        st = {"topology": topo, "complete": False, "faults": [], "next_id": 1,
              "created": time.time(), "run_dir": RUN_DIR}
        write_json(STATE_FILE, st)
        try:
            build(topo, nodes, links, st)
        except BaseException:
            log("build failed; tearing down what was built")
            teardown()
            raise
        st["complete"] = True
        write_json(STATE_FILE, st)
        write_outputs(st)
        nh = sum(1 for n in nodes.values() if n["role"] == "host")
        log(f"up: {nh} hosts, {len(nodes) - nh} routers, {len(links) + 1} links in "
            f"{time.monotonic() - t0:.1f} s; hosts in {os.path.join(RUN_DIR, 'hosts.json')}; "
            f"server address {SERVER_V4} / {SERVER_V6} (dev {SERVER_DEV})")
    return 0


def build(topo, nodes, links, st):
    names = list(nodes)
    n_hosts = sum(1 for n in nodes.values() if n["role"] == "host")
    if n_hosts > NEIGH_RAISE_ABOVE_HOSTS:
        raise_neigh(len(nodes) + n_hosts)
    st["netem"] = have_netem()
    ip_batch(None, [f"netns add {nodes[n]['netns']}" for n in names])
    parallel(lambda n: ns_sh(nodes[n]["netns"], sysctl_script(nodes[n]["role"])), names)
    lines = [f"link add name {l['a_dev']} netns {nodes[l['a']]['netns']} type veth peer name "
             f"{l['b_dev']} netns {nodes[l['b']]['netns']}" for l in links]
    lines.append(f"link add name {SERVER_DEV} type veth peer name srv netns {nodes['d1b']['netns']}")
    ip_batch(None, lines)
    parallel(lambda n: ip_batch(nodes[n]["netns"], node_config(topo, nodes, n)), names)
    root = [f"addr replace {SERVER_V4}/24 dev {SERVER_DEV}",
            f"addr replace {SERVER_V6}/64 dev {SERVER_DEV} nodad",
            f"link set {SERVER_DEV} up"]
    for dc in topo["dcs"]:
        d = dc["dc"]
        root += [f"route replace 10.{d}.0.0/16 via {SERVER_PEER_V4} dev {SERVER_DEV}",
                 f"route replace {v6(0xfd00, d)}/32 via {SERVER_PEER_V6} dev {SERVER_DEV}"]
    ip_batch(None, root)
    try:
        with open(f"/sys/class/net/{SERVER_DEV}/queues/rx-0/rps_cpus", "w") as f:
            f.write(rps_mask())
    except OSError:
        pass
    parallel(lambda n: ns_sh(nodes[n]["netns"], post_script(nodes[n])), names)
    if topo["inter_dc_delay_us"] > 0 and len(topo["dcs"]) > 1:
        for a in range(1, len(topo["dcs"]) + 1):
            for b in range(a + 1, len(topo["dcs"]) + 1):
                add_fault(st, {"kind": "delay", "target": f"interdc:{a}-{b}", "dir": "both",
                               "delay_us": topo["inter_dc_delay_us"],
                               "jitter_us": topo["inter_dc_jitter_us"], "dist": "normal",
                               "method": "auto", "base": True})
    wait_for_traffic(nodes)


def wait_for_traffic(nodes, timeout_s=5.0, quiet=False):
    """Every host reaches the server address over IPv4 and IPv6 (crosses the whole fabric)."""
    n_tries = int(timeout_s / 0.1)
    script = ("ok=0; for a in %s %s; do i=0; while [ $i -lt %d ]; do "
              "if ping -n -q -c1 -W1 $a >/dev/null 2>&1; then ok=$((ok+1)); break; fi; "
              "i=$((i+1)); sleep 0.1; done; done; echo $ok") % (SERVER_V4, SERVER_V6, n_tries)
    hosts = [n for n in nodes.values() if n["role"] == "host"]
    t0 = time.monotonic()
    res = parallel(lambda n: ns_sh(n["netns"], script, check=False).stdout.strip(), hosts)
    bad = [h["name"] for h, r in zip(hosts, res) if r != "2"]
    if bad:
        raise LabError(f"links did not pass traffic within {timeout_s} s: {', '.join(bad[:10])}")
    if not quiet:
        log(f"all {len(hosts)} hosts reach the server over IPv4 and IPv6 "
            f"({time.monotonic() - t0:.2f} s)")


def write_outputs(st):
    topo = st["topology"]
    nodes, _ = plan(topo)
    desc = describe(topo, nodes)
    write_json(os.path.join(RUN_DIR, "hosts.json"), desc)
    write_json(os.path.join(STATE_DIR, "hosts.json"), desc)


def kill_pids(pids, what):
    pids = [p for p in set(pids) if p > 1 and p != os.getpid()]
    if not pids:
        return
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return
        time.sleep(0.05)
    for p in pids:
        if pid_alive(p):
            log(f"killing {what} {p}")
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def teardown():
    st = read_json(STATE_FILE) or {}
    pids = [f.get("pid") for f in st.get("faults", []) if f.get("pid")]
    # Thaw frozen hosts first so they can act on SIGTERM.
    for f in st.get("faults", []):
        if f.get("kind") == "freeze":
            signal_netns(f["netns"], signal.SIGCONT)
    kill_pids([p for p in pids if p], "delay line")
    namespaces = lab_namespaces()
    inside = []
    for ns in namespaces:
        p = run(["ip", "netns", "pids", ns], check=False)
        inside += [int(x) for x in p.stdout.split() if x.isdigit()]
    if inside:
        for p in inside:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        log(f"stopping {len(inside)} processes left in lab namespaces")
        kill_pids(inside, "process")
    if namespaces:
        ip_batch(None, [f"netns del {ns}" for ns in namespaces], check=False)
        for ns in lab_namespaces():  # anything a batch could not remove
            run(["ip", "netns", "del", ns], check=False)
    links = root_pm_links()
    for l in links:
        run(["ip", "link", "del", l], check=False)
    # The lab creates no ruleset in the root namespace; remove one should an old version have.
    if shutil.which("nft"):
        run(["nft", "delete", "table", "inet", "pmlab"], check=False)
    restore_sysctls()
    for path in (STATE_FILE, os.path.join(STATE_DIR, "hosts.json"),
                 os.path.join(RUN_DIR, "hosts.json"), os.path.join(RUN_DIR, "faults.json")):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    for name in os.listdir(STATE_DIR) if os.path.isdir(STATE_DIR) else []:
        if name.startswith("delayline-"):
            os.unlink(os.path.join(STATE_DIR, name))
    left = lab_namespaces() + root_pm_links()
    if left:
        raise LabError(f"teardown left {left}")
    log(f"down: removed {len(namespaces)} namespaces, {len(links)} root links")


def cmd_down(args):
    with Lock():
        teardown()
    return 0


def cmd_status(args):
    st = read_json(STATE_FILE)
    present = lab_namespaces()
    if not st:
        if present or root_pm_links():
            print(f"no lab state, but {len(present)} {PREFIX}* namespaces and links "
                  f"{root_pm_links()} exist (crashed lab?): run lab/lab.sh down")
            return 3
        print("lab is down")
        return 3
    topo = st["topology"]
    nodes, links = plan(topo)
    want = {n["netns"] for n in nodes.values()}
    missing = sorted(want - set(present))
    nh = sum(1 for n in nodes.values() if n["role"] == "host")
    print(f"lab is {'up' if st.get('complete') and not missing else 'BROKEN'}: "
          f"{len(topo['dcs'])} DCs, {nh} hosts, {len(nodes) - nh} routers, "
          f"inter-DC delay {topo['inter_dc_delay_us']} us")
    for d in topo["dcs"]:
        print(f"  {d['name']}: {d['racks']} racks x {d['hosts_per_rack']} hosts, "
              f"{d['spines']} spines, 10.{d['dc']}.0.0/16 {v6(0xfd00, d['dc'])}/32")
    print(f"  server: {SERVER_V4} / {SERVER_V6} on {SERVER_DEV} (root namespace)")
    print(f"  netem: {'yes' if st.get('netem') else 'no (delay by pm-delayline on NFQUEUE)'}")
    print(f"  hosts file: {os.path.join(RUN_DIR, 'hosts.json')}")
    if missing:
        print(f"  missing namespaces: {' '.join(missing[:10])}")
    print_faults(st)
    return 0 if st.get("complete") and not missing else 2


# ---------------------------------------------------------------------------------------------
# Faults


def require_lab():
    st = read_json(STATE_FILE)
    if not st or not st.get("complete"):
        raise LabError("no lab is up (lab/lab.sh up TOPOLOGY)")
    return st


def resolve_router(nodes, name):
    if name in nodes and nodes[name]["role"] != "host":
        return nodes[name]
    if name + "t" in nodes:  # a rack name means its ToR
        return nodes[name + "t"]
    if name.startswith(PREFIX) and name[len(PREFIX):] in nodes:
        return resolve_router(nodes, name[len(PREFIX):])
    raise LabError(f"no router {name!r} (a ToR d1r1t or rack d1r1, spine d1s1, border d1b)")


def resolve_target(nodes, target, direction, base=False):
    """Where a link fault acts: [(netns, iif, oif)] for filter rules (patterns end in '*'), and
    [(netns, dev)] egress devices for netem."""
    kind, _, what = target.partition(":")
    if not what and kind != "server":
        kind, what = "host", kind
    up, down = direction in ("both", "up"), direction in ("both", "down")
    rules, egress = [], []
    if kind == "host":
        h = nodes.get(what)
        if not h or h["role"] != "host":
            raise LabError(f"no host {what!r}")
        tor, port = nodes[h["tor"]], h["ports"]["eth0"]["peer_dev"]
        if up:
            rules.append((tor["netns"], port, None))
            egress.append((h["netns"], "eth0"))
        if down:
            rules.append((tor["netns"], None, port))
            egress.append((tor["netns"], port))
    elif kind in ("rack", "link"):
        if kind == "rack":
            tor, spines = resolve_router(nodes, what), None
        else:
            rk, _, sp = what.partition("-")
            tor, spines = resolve_router(nodes, rk), [sp]
            if sp not in nodes or nodes[sp]["role"] != "spine" or nodes[sp]["dc"] != tor["dc"]:
                raise LabError(f"no spine {sp!r} in the DC of {rk!r} (link:d1r1-d1s1)")
        if tor["role"] != "tor":
            raise LabError(f"{what!r} is not a rack")
        ports = [dev for dev, p in tor["ports"].items() if p["kind"] == "tor-spine"
                 and (spines is None or p["peer"] in spines)]
        pat = "s*" if spines is None else ports[0]
        if up:
            rules.append((tor["netns"], None, pat))
            egress += [(tor["netns"], dev) for dev in ports]
        if down:
            rules.append((tor["netns"], pat, None))
            egress += [(nodes[tor["ports"][dev]["peer"]]["netns"], tor["ports"][dev]["peer_dev"])
                       for dev in ports]
    elif kind == "spine":
        s = nodes.get(what)
        if not s or s["role"] != "spine":
            raise LabError(f"no spine {what!r}")
        if direction == "both":
            rules.append((s["netns"], None, None))
            egress += [(s["netns"], dev) for dev in s["ports"]]
        elif up:
            rules.append((s["netns"], "r*", None))
            egress.append((s["netns"], "bdr"))
        else:
            rules.append((s["netns"], None, "r*"))
            egress += [(s["netns"], dev) for dev in s["ports"] if dev != "bdr"]
    elif kind == "interdc":
        parts = what.replace("d", "").split("-")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise LabError(f"interdc target is interdc:A-B, e.g. interdc:1-2 (got {what!r})")
        a, b = int(parts[0]), int(parts[1])
        ba, bb = nodes.get(f"d{a}b"), nodes.get(f"d{b}b")
        if not ba or not bb or a == b:
            raise LabError(f"no inter-DC link {what!r}")
        # The topology's delay runs on the first border, faults on the second: a second delay
        # line in the same namespace would count from the same receive timestamp and not add.
        near, far = (ba, f"d{b}") if base else (bb, f"d{a}")
        if up:
            rules.append((near["netns"], None, far) if base else (near["netns"], far, None))
            egress.append((ba["netns"], f"d{b}"))
        if down:
            rules.append((near["netns"], far, None) if base else (near["netns"], None, far))
            egress.append((bb["netns"], f"d{a}"))
    elif kind == "server":
        b = nodes["d1b"]
        if up:
            rules.append((b["netns"], None, "srv"))
        if down:
            rules.append((b["netns"], "srv", None))
        egress = None
    else:
        raise LabError(f"unknown target {target!r}: host:H, rack:R, link:R-S, spine:S, "
                       "interdc:A-B, server")
    return rules, egress


def nft(ns, script, check=True):
    return run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, check=check)


def nft_ensure(ns):
    nft(ns, "add table inet pmlab\n"
            "add chain inet pmlab faults { type filter hook forward priority -10; policy accept; }\n")


def nft_match(iif, oif):
    m = []
    if iif:
        m.append(f'iifname "{iif}"')
    if oif:
        m.append(f'oifname "{oif}"')
    return " ".join(m)


def nft_rule_handles(ns, tag):
    p = run(["ip", "netns", "exec", ns, "nft", "-j", "list", "chain", "inet", "pmlab", "faults"],
            check=False)
    if p.returncode != 0:
        return []
    out = []
    for item in json.loads(p.stdout).get("nftables", []):
        r = item.get("rule")
        if r and r.get("comment") == tag:
            pk = by = 0
            for e in r.get("expr", []):
                if "counter" in e:
                    pk, by = e["counter"]["packets"], e["counter"]["bytes"]
            out.append((r["handle"], pk))
    return out


def ipt_spec(iif, oif, queue):
    spec = []
    if iif:
        spec += ["-i", iif.replace("*", "+")]
    if oif:
        spec += ["-o", oif.replace("*", "+")]
    return spec + ["-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]


def find_delayline():
    cands = [os.environ.get("PMLAB_DELAYLINE", ""),
             os.path.join(LAB_DIR, "build", "delayline", "pm-delayline"),
             os.path.join(REPO_DIR, "build", "lab", "delayline", "pm-delayline")]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    bdir = os.path.join(LAB_DIR, "build", "delayline")
    log("building pm-delayline (lab/delayline)")
    run(["cmake", "-S", os.path.join(LAB_DIR, "delayline"), "-B", bdir,
         "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
    run(["cmake", "--build", bdir, "-j2"])
    return os.path.join(bdir, "pm-delayline")


def signal_netns(ns, sig):
    p = run(["ip", "netns", "pids", ns], check=False)
    pids = [int(x) for x in p.stdout.split() if x.isdigit()]
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def reconfigure(topo, nodes, names):
    for n in names:
        ip_batch(nodes[n]["netns"], node_config(topo, nodes, n))


def add_fault(st, f):
    """Applies fault f, records it in st (and the state file). Returns the fault."""
    topo = st["topology"]
    nodes, _ = plan(topo)
    fid = st["next_id"]
    st["next_id"] = fid + 1
    f["id"] = fid
    tag = f"pmf{fid}"
    f["tag"] = tag
    f["rules"] = []
    try:
        apply_fault(st, nodes, f)
    except BaseException:
        remove_fault(st, f)  # whatever part of it was applied
        raise
    st["faults"].append(f)
    write_json(STATE_FILE, st)
    write_json(os.path.join(RUN_DIR, "faults.json"), st["faults"])
    return f


def apply_fault(st, nodes, f):
    fid, tag, kind = f["id"], f["tag"], f["kind"]
    if kind == "loss":
        rules, _ = resolve_target(nodes, f["target"], f["dir"])
        thresh = round(f["percent"] * 10000)
        for ns, iif, oif in rules:
            nft_ensure(ns)
            nft(ns, f"add rule inet pmlab faults {nft_match(iif, oif)} numgen random mod 1000000 "
                    f"< {thresh} counter drop comment \"{tag}\"\n")
            f["rules"].append({"type": "nft", "netns": ns})
    elif kind == "blackhole":
        at = f["at_netns"]
        nft_ensure(at)
        for (s, d) in f["pairs"]:
            fam = "ip6" if ":" in s else "ip"
            dirs = [(s, d, f.get("sport"), f.get("dport"))]
            if not f.get("oneway"):
                dirs.append((d, s, f.get("dport"), f.get("sport")))
            for (a, b, sp, dp) in dirs:
                m = f"{fam} saddr {a} {fam} daddr {b}"
                if f.get("proto"):
                    m += f" meta l4proto {f['proto']}"
                    if sp:
                        m += f" th sport {sp}"
                    if dp:
                        m += f" th dport {dp}"
                nft(at, f"add rule inet pmlab faults {m} counter drop comment \"{tag}\"\n")
        f["rules"].append({"type": "nft", "netns": at})
    elif kind == "delay":
        rules, egress = resolve_target(nodes, f["target"], f["dir"], base=bool(f.get("base")))
        method = f.get("method", "auto")
        if method == "auto":
            method = "netem" if st.get("netem") and egress else "nfqueue"
        f["method"] = method
        if method == "netem":
            if not st.get("netem"):
                raise LabError("this kernel has no sch_netem; use --method nfqueue")
            for ns, dev in egress:
                cmd = ["tc", "qdisc", "add", "dev", dev, "root", "netem", "delay",
                       f"{f['delay_us']}us"]
                if f.get("jitter_us"):
                    cmd += [f"{f['jitter_us']}us"]
                    if f.get("dist") == "normal":
                        cmd += ["distribution", "normal"]
                run(["ip", "netns", "exec", ns] + cmd)
                f["rules"].append({"type": "netem", "netns": ns, "dev": dev})
        else:
            queue = fid
            binary = find_delayline()
            os.makedirs(RUN_DIR, exist_ok=True)
            stats = os.path.join(STATE_DIR, f"delayline-{fid}.json")
            logf = os.path.join(STATE_DIR, f"delayline-{fid}.log")
            ns0 = rules[0][0]
            if any(r[0] != ns0 for r in rules):
                raise LabError("internal: a delay line serves one namespace")
            cmd = ["ip", "netns", "exec", ns0, binary, "--queue", str(queue),
                   "--delay-us", str(f["delay_us"]), "--jitter-us", str(f.get("jitter_us", 0)),
                   "--dist", f.get("dist", "uniform"), "--stats", stats]
            with open(logf, "w") as lf:
                proc = subprocess.Popen(cmd, stdout=lf, stderr=lf, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            f["pid"], f["stats"], f["log"], f["queue"] = proc.pid, stats, logf, queue
            f["netns"] = ns0
            deadline = time.monotonic() + 3.0
            while True:
                text = open(logf).read()
                if "pm-delayline: queue" in text:
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    if proc.poll() is None:
                        proc.kill()
                    raise LabError(f"pm-delayline did not start: {text.strip()}")
                time.sleep(0.02)
            # Base (inter-DC) delays live in the mangle table, faults in filter: an accepted
            # packet leaves its chain, so two queue rules in one chain would not both apply.
            table = "mangle" if f.get("base") else "filter"
            for ns, iif, oif in rules:
                for tool in ("iptables", "ip6tables"):
                    spec = ipt_spec(iif, oif, queue)
                    run(["ip", "netns", "exec", ns, tool, "-w", "-t", table, "-A", "FORWARD"]
                        + spec)
                    f["rules"].append({"type": "ipt", "netns": ns, "tool": tool,
                                       "table": table, "spec": spec})
    elif kind == "down":
        f["devs"] = down_devices(nodes, f["target"])
        for ns, dev in f["devs"]:
            run(["ip", "-n", ns, "link", "set", dev, "down"])
    elif kind == "freeze":
        pids = signal_netns(f["netns"], signal.SIGSTOP)
        f["frozen"] = pids
    else:
        raise LabError(f"unknown fault kind {kind}")


def down_devices(nodes, target):
    """(netns, dev) pairs to set down for a down fault."""
    kind, _, what = target.partition(":")
    if not what:
        kind, what = "host", kind
    if kind == "host":
        h = nodes.get(what)
        if not h or h["role"] != "host":
            raise LabError(f"no host {what!r}")
        return [(h["netns"], "eth0")]
    if kind == "tor":
        t = resolve_router(nodes, what)
        return [(t["netns"], dev) for dev in t["ports"]]
    if kind == "spine":
        s = nodes.get(what)
        if not s or s["role"] != "spine":
            raise LabError(f"no spine {what!r}")
        return [(s["netns"], dev) for dev in s["ports"]]
    if kind in ("rack", "link", "interdc"):
        rules, _ = resolve_target(nodes, target, "both")
        out = []
        for ns, iif, oif in rules:
            pat = iif or oif
            n = next(n for n in nodes.values() if n["netns"] == ns)
            out += [(ns, dev) for dev in n["ports"]
                    if dev == pat or (pat.endswith("*") and dev.startswith(pat[:-1]))]
        return sorted(set(out))
    raise LabError(f"down target is host:H, tor:R (rack down), rack:R (uplinks), link:R-S, "
                   f"spine:S or interdc:A-B (got {target!r})")


def remove_fault(st, f):
    topo = st["topology"]
    nodes, _ = plan(topo)
    stats = None
    if f.get("pid"):
        # Fresh figures, then stop (it releases what it holds and writes its stats at exit).
        kill_pids([f["pid"]], "delay line")
        stats = read_json(f.get("stats", ""), None) if f.get("stats") else None
    for r in f.get("rules", []):
        if r["type"] == "nft":
            for handle, _ in nft_rule_handles(r["netns"], f["tag"]):
                run(["ip", "netns", "exec", r["netns"], "nft", "delete", "rule", "inet", "pmlab",
                     "faults", "handle", str(handle)], check=False)
        elif r["type"] == "ipt":
            run(["ip", "netns", "exec", r["netns"], r["tool"], "-w", "-t", r["table"], "-D",
                 "FORWARD"] + r["spec"], check=False)
        elif r["type"] == "netem":
            run(["ip", "netns", "exec", r["netns"], "tc", "qdisc", "del", "dev", r["dev"],
                 "root"], check=False)
    if f["kind"] == "down":
        for ns, dev in f.get("devs", []):
            run(["ip", "-n", ns, "link", "set", dev, "up"], check=False)
        by_ns = {n["netns"]: name for name, n in nodes.items()}
        touched = {by_ns[ns] for ns, _ in f.get("devs", [])}
        # Admin-down flushed routes on both ends' routers; put every route back.
        peers = {nodes[t]["ports"][dev]["peer"] for ns, dev in f.get("devs", [])
                 for t in [by_ns[ns]] if dev in nodes[t]["ports"]}
        reconfigure(topo, nodes, sorted(touched | peers))
    if f["kind"] == "freeze":
        for pid in f.get("frozen", []):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        signal_netns(f["netns"], signal.SIGCONT)
    st["faults"] = [x for x in st["faults"] if x["id"] != f["id"]]
    write_json(STATE_FILE, st)
    write_json(os.path.join(RUN_DIR, "faults.json"), st["faults"])
    return stats


def fault_counters(f):
    total = 0
    for r in f.get("rules", []):
        if r["type"] == "nft":
            total += sum(pk for _, pk in nft_rule_handles(r["netns"], f["tag"]))
    return total


def delayline_stats(f, fresh=True):
    if not f.get("pid"):
        return None
    if fresh and pid_alive(f["pid"]):
        try:
            before = os.stat(f["stats"]).st_mtime_ns if os.path.exists(f["stats"]) else 0
            os.kill(f["pid"], signal.SIGUSR1)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if os.path.exists(f["stats"]) and os.stat(f["stats"]).st_mtime_ns != before:
                    break
                time.sleep(0.01)
        except (ProcessLookupError, FileNotFoundError):
            pass
    return read_json(f["stats"], None)


def describe_fault(f):
    k = f["kind"]
    if k == "loss":
        return f"loss {f['percent']}% on {f['target']} ({f['dir']})"
    if k == "delay":
        j = f" +/-{f['jitter_us']}us {f.get('dist', 'uniform')}" if f.get("jitter_us") else ""
        return (f"delay {f['delay_us']}us{j} on {f['target']} ({f['dir']}, {f['method']})"
                + (" [topology]" if f.get("base") else ""))
    if k == "blackhole":
        pr = f" {f['proto']}" if f.get("proto") else ""
        ports = "".join(f" {n} {f[n]}" for n in ("sport", "dport") if f.get(n))
        return (f"blackhole {f['src']} {'->' if f.get('oneway') else '<->'} {f['dst']}{pr}"
                f"{ports} at {f['at']}")
    if k == "down":
        return f"down {f['target']} ({len(f['devs'])} links)"
    if k == "freeze":
        return f"freeze {f['target']} ({len(f.get('frozen', []))} processes stopped)"
    return k


def print_faults(st, as_json=False):
    faults = st.get("faults", [])
    if as_json:
        out = []
        for f in faults:
            g = dict(f)
            g["description"] = describe_fault(f)
            g["matched_packets"] = fault_counters(f)
            g["delayline"] = delayline_stats(f)
            g["alive"] = pid_alive(f["pid"]) if f.get("pid") else None
            out.append(g)
        print(json.dumps(out, indent=1))
        return
    if not faults:
        print("  faults: none")
        return
    print("  faults:")
    for f in faults:
        extra = ""
        if f["kind"] in ("loss", "blackhole"):
            extra = f"  dropped {fault_counters(f)} packets"
        s = delayline_stats(f)
        if s:
            extra = (f"  pid {f['pid']}{'' if pid_alive(f['pid']) else ' DEAD'} "
                     f"packets {s['packets']} lateness p50 {s['lateness_us']['p50']}us "
                     f"p99 {s['lateness_us']['p99']}us max {s['lateness_us']['max']}us")
        elif f.get("pid") and not pid_alive(f["pid"]):
            extra = f"  pid {f['pid']} DEAD (see {f.get('log')})"
        print(f"  [{f['id']}] {describe_fault(f)}{extra}")


def resolve_endpoint(nodes, x):
    """A host name -> its IPv4 and IPv6 addresses; an address or CIDR -> itself."""
    if x in nodes and nodes[x]["role"] == "host":
        return [nodes[x]["ipv4"], nodes[x]["ipv6"]], nodes[x]
    try:
        return [str(ipaddress.ip_network(x, strict=False))], None
    except ValueError:
        raise LabError(f"{x!r} is neither a host name nor an address/CIDR")


def cmd_fault(args):
    with Lock():
        st = require_lab()
        nodes, _ = plan(st["topology"])
        k = args.kind
        if k == "loss":
            if not 0 < args.percent <= 100:
                raise LabError("loss percent must be in (0, 100]")
            f = {"kind": "loss", "target": args.target, "dir": args.dir,
                 "percent": args.percent}
        elif k == "delay":
            if args.delay_us < 0 or args.jitter_us < 0:
                raise LabError("delay and jitter are >= 0 microseconds")
            f = {"kind": "delay", "target": args.target, "dir": args.dir,
                 "delay_us": args.delay_us, "jitter_us": args.jitter_us, "dist": args.dist,
                 "method": args.method}
        elif k == "blackhole":
            sa, sh = resolve_endpoint(nodes, args.src)
            da, _ = resolve_endpoint(nodes, args.dst)
            pairs = [(s, d) for s in sa for d in da if (":" in s) == (":" in d)]
            if not pairs:
                raise LabError("source and destination have no address family in common")
            if args.at:
                at = resolve_router(nodes, args.at)
            elif sh:
                at = nodes[sh["tor"]]
            else:
                raise LabError("--at ROUTER is needed when the source is not a host name")
            if (args.sport or args.dport) and not args.proto:
                raise LabError("--sport/--dport need --proto tcp|udp")
            f = {"kind": "blackhole", "src": args.src, "dst": args.dst, "pairs": pairs,
                 "proto": args.proto, "sport": args.sport, "dport": args.dport,
                 "oneway": args.oneway, "at": at["name"], "at_netns": at["netns"]}
        elif k in ("down", "hostdown", "rackdown"):
            target = args.target
            if k == "hostdown":
                target = "host:" + target.replace("host:", "")
            elif k == "rackdown":
                target = "tor:" + target.replace("tor:", "").replace("rack:", "")
            f = {"kind": "down", "target": target}
        elif k == "freeze":
            h = nodes.get(args.host)
            if not h or h["role"] != "host":
                raise LabError(f"no host {args.host!r}")
            f = {"kind": "freeze", "target": args.host, "netns": h["netns"]}
        else:
            raise LabError(f"unknown fault {k}")
        f = add_fault(st, f)
        print(f"fault {f['id']}: {describe_fault(f)}")
    return 0


def cmd_undo(args):
    with Lock():
        st = require_lab()
        ids = [f["id"] for f in st["faults"] if not f.get("base")] if args.id == "all" else \
            [int(args.id)]
        relinked = False
        for i in ids:
            f = next((x for x in st["faults"] if x["id"] == i), None)
            if not f:
                raise LabError(f"no fault {i}")
            stats = remove_fault(st, f)
            relinked = relinked or f["kind"] == "down"
            msg = f"undone {i}: {describe_fault(f)}"
            if stats:
                msg += (f" (delay line: {stats['packets']} packets, lateness p50 "
                        f"{stats['lateness_us']['p50']}us p99 {stats['lateness_us']['p99']}us "
                        f"max {stats['lateness_us']['max']}us)")
            print(msg)
        if relinked and not any(x["kind"] == "down" for x in st["faults"]):
            # Links came back: return once every host passes traffic again, as `up` does.
            try:
                wait_for_traffic(plan(st["topology"])[0], quiet=True)
            except LabError as e:
                log(f"warning: {e}")
    return 0


def cmd_faults(args):
    st = read_json(STATE_FILE)
    if not st:
        print("[]" if args.json else "lab is down")
        return 0 if args.json else 3
    print_faults(st, as_json=args.json)
    return 0


def fabric_devices(desc, dc):
    """A DC's spines and ToRs with every port address (IPv4 and IPv6, no link-local), as the
    API's DC `devices` (docs/ANALYZER.md, "Narrowing a spine"): a spine answers the agents'
    traceroute from the port the probe came in on, so every port is registered. `dc` is the
    DC's number or name."""
    d = next((x for x in desc["dcs"] if str(dc) in (str(x["dc"]), x["name"])), None)
    if d is None:
        raise LabError(f"no DC {dc!r} (a number 1.. or a name: "
                       f"{', '.join(x['name'] for x in desc['dcs'])})")
    out = []
    for r in desc["routers"]:
        if r["dc"] != d["dc"] or r["role"] not in ("spine", "tor"):
            continue
        addrs = []
        for p in r["ports"].values():
            for fam in ("ipv4", "ipv6"):
                a = (p.get(fam) or "").split("/")[0]
                if a and not a.startswith("fe80") and a not in addrs:
                    addrs.append(a)
        out.append({"name": r["name"], "layer": r["role"], "addresses": addrs})
    return sorted(out, key=lambda x: x["name"])


def cmd_devices(args):
    st = require_lab()
    nodes, _ = plan(st["topology"])
    print(json.dumps(fabric_devices(describe(st["topology"], nodes), args.dc)))
    return 0


def cmd_hosts(args):
    st = require_lab()
    nodes, _ = plan(st["topology"])
    for n in nodes.values():
        if n["role"] == "host":
            print(f"{n['name']:<12} {n['netns']:<14} {n['ipv4']:<15} {n['ipv6']:<20} "
                  f"tor {n['tor']}")
    return 0


def cmd_check(args):
    """Every host pings every other (or a sample) over IPv4 and IPv6: one echo, one retry, all
    destinations of a host at once, so dead hosts cost one timeout and not one per pair."""
    st = require_lab()
    nodes, _ = plan(st["topology"])
    hosts = [n for n in nodes.values() if n["role"] == "host"]
    targets = hosts
    sample = args.sample if args.sample else (0 if args.all or len(hosts) <= 64 else 32)
    if sample and len(hosts) > sample:
        step = len(hosts) / sample
        targets = [hosts[int(i * step)] for i in range(sample)]

    def one(h):
        lst = " ".join(f"{t['ipv4']} {t['ipv6']}" for t in targets if t is not h)
        script = (f"for a in {lst}; do (ping -n -q -c1 -W1 $a >/dev/null 2>&1 || "
                  f"ping -n -q -c1 -W1 $a >/dev/null 2>&1 || echo $a) & done; wait")
        return ns_sh(h["netns"], script, check=False).stdout.split()

    with ThreadPoolExecutor(max_workers=16) as ex:
        res = list(ex.map(one, hosts))
    n_pairs = sum(2 * len([t for t in targets if t is not h]) for h in hosts)
    fails = [(h["name"], a) for h, r in zip(hosts, res) for a in r]
    print(f"check: {n_pairs - len(fails)}/{n_pairs} host pairs reachable (IPv4+IPv6)")
    for h, a in fails[:20]:
        print(f"  FAIL {h} -> {a}")
    return 0 if not fails else 1


def main():
    ap = argparse.ArgumentParser(prog="lab.sh", description="pingmesh namespace lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", help="build the lab from a topology file or DCSxRACKSxHOSTS")
    p.add_argument("topology")
    p.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="remove every pm- namespace, link, process and sysctl change"
                   ).set_defaults(fn=cmd_down)
    sub.add_parser("status", help="what is up, and the faults").set_defaults(fn=cmd_status)
    sub.add_parser("hosts", help="list hosts").set_defaults(fn=cmd_hosts)
    p = sub.add_parser("devices", help="a DC's spines and ToRs with their addresses, as the "
                       "API's DC `devices` (JSON)")
    p.add_argument("dc", help="DC number (1..) or name")
    p.set_defaults(fn=cmd_devices)
    p = sub.add_parser("check", help="all-pairs reachability over IPv4 and IPv6")
    p.add_argument("--sample", type=int, default=0,
                   help="ping only N destinations (default: all up to 64 hosts, else 32)")
    p.add_argument("--all", action="store_true", help="all pairs, however many")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("faults", help="list the faults in force")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_faults)
    p = sub.add_parser("undo", help="remove a fault by id, or all")
    p.add_argument("id")
    p.set_defaults(fn=cmd_undo)

    fp = sub.add_parser("fault", help="inject a fault")
    fs = fp.add_subparsers(dest="kind", required=True)
    dirs = ["both", "up", "down"]
    p = fs.add_parser("loss", help="random loss: TARGET PERCENT")
    p.add_argument("target")
    p.add_argument("percent", type=float)
    p.add_argument("--dir", choices=dirs, default="both")
    p = fs.add_parser("delay", help="delay (+jitter): TARGET DELAY_US")
    p.add_argument("target")
    p.add_argument("delay_us", type=int)
    p.add_argument("--jitter-us", type=int, default=0)
    p.add_argument("--dist", choices=["uniform", "normal"], default="uniform")
    p.add_argument("--dir", choices=dirs, default="both")
    p.add_argument("--method", choices=["auto", "netem", "nfqueue"], default="auto")
    p = fs.add_parser("blackhole", help="drop all packets between SRC and DST (hosts or CIDRs)")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--proto", choices=["tcp", "udp"])
    p.add_argument("--sport", type=int)
    p.add_argument("--dport", type=int)
    p.add_argument("--at", help="router that drops (default: the source host's ToR)")
    p.add_argument("--oneway", action="store_true", help="only SRC -> DST")
    p = fs.add_parser("down", help="links down: host:H, tor:R, rack:R, link:R-S, spine:S, "
                      "interdc:A-B")
    p.add_argument("target")
    p = fs.add_parser("hostdown", help="a host's link down")
    p.add_argument("target")
    p = fs.add_parser("rackdown", help="all of a ToR's links down")
    p.add_argument("target")
    p = fs.add_parser("freeze", help="SIGSTOP every process in a host namespace")
    p.add_argument("host")
    fp.set_defaults(fn=cmd_fault)

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("lab: needs root (network namespaces)", file=sys.stderr)
        return 77
    try:
        return args.fn(args)
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
