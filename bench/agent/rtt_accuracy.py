#!/usr/bin/env python3
"""RTT accuracy of the agent against the wire, with fping as the peer (issue 3 / issue 7).

In the namespace lab (1 DC x 2 racks x 2 hosts, server on 10.255.0.1, an agent per host probing
TCP, UDP, ICMP (and HTTP, not measured here) over IPv4 and IPv6 every --interval-ms), 1 ms of
delay is injected on rack d1r1's uplinks (`fault delay rack:d1r1 1000 --dir up --method
nfqueue`: one crossing per round trip). Then, on host d1r1h1, for --seconds:
  - tcpdump captures the host's eth0 inside its namespace (nanosecond timestamps; veth has no
    hardware clock, so the time stamp type is the kernel's, `host`);
  - the agent's result log gives every pingmesh result (RTT, UDP/ICMP sequence, start time);
  - fping -C pings the same targets (the agent's pinglist peers) at the same interval.
The wire RTT of each probe is computed from the capture: TCP SYN -> SYN-ACK (same source port),
UDP request -> reply (same pingmesh sequence number), ICMP echo request -> reply (same id and
sequence). Error = tool RTT - wire RTT, per probe; reported per protocol and target: the median
error, the median and p99 of |error|, and the median wire RTT.

Takes /tmp/pingmesh-lab.lock itself (one lab per machine); tears the lab down at the end.

usage: bench/agent/rtt_accuracy.py --binary build/src/cmd/pingmesh [--seconds 30]
       [--interval-ms 100] [--delay-us 1000] [--json FILE] [--keep DIR]
"""

import argparse
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from agent_lab_e2e import LAB_TOPOLOGY, AgentMesh  # noqa: E402
from lab_e2e import lab_cmd, skip_reason  # noqa: E402
from mesh import Failure, log, wait_until  # noqa: E402

LOCK = "/tmp/pingmesh-lab.lock"
SOURCE = "d1r1h1"
PORT = 9001


# ---- pcap --------------------------------------------------------------------------------------

def read_pcap(path):
    """Yields (t_ns, ip_src, ip_dst, proto, l4 bytes) for the IPv4 and IPv6 packets (without
    extension headers) of an Ethernet pcap; ICMPv6 is reported as proto 58."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0xA1B23C4D:
        endian, scale = "<", 1
    elif magic == 0xA1B2C3D4:
        endian, scale = "<", 1000
    else:
        raise Failure(f"{path}: not a little-endian pcap (magic {magic:#x})")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise Failure(f"{path}: link type {linktype}, expected Ethernet")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = sec * 1_000_000_000 + frac * scale
        ip = pkt[14:]
        if pkt[12:14] == b"\x08\x00" and len(ip) >= 20:
            ihl = (ip[0] & 0x0F) * 4
            yield (t, ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20])), ip[9],
                   ip[ihl:])
        elif pkt[12:14] == b"\x86\xdd" and len(ip) >= 40:
            yield (t, ipaddress.IPv6Address(ip[8:24]).compressed,
                   ipaddress.IPv6Address(ip[24:40]).compressed, ip[6], ip[40:])


def wire_events(path, mine):
    """Wire RTTs from the capture at the host's addresses `mine`:
    tcp: list of (syn_ns, dst, rtt_ns) for every SYN answered by a SYN-ACK,
    udp: {seq: (dst, rtt_ns)} for pingmesh UDP probes,
    icmp: {(dst, id, seq, icmp length): (req_ns, rtt_ns)} for every answered echo request."""
    syn, tcp, udp_req, udp, icmp_req, icmp = {}, [], {}, {}, {}, {}
    for t, src, dst, proto, l4 in read_pcap(path):
        src_me, dst_me = src in mine, dst in mine
        if proto == 6 and len(l4) >= 14:
            sport, dport = struct.unpack("!HH", l4[:4])
            flags = l4[13]
            if src_me and dport == PORT and flags & 0x12 == 0x02:  # SYN
                syn.setdefault((dst, sport), t)  # a retransmitted SYN keeps the first time
            elif dst_me and sport == PORT and flags & 0x12 == 0x12:  # SYN-ACK
                t0 = syn.pop((src, dport), None)
                if t0 is not None:
                    tcp.append((t0, src, t - t0))
        elif proto == 17 and len(l4) >= 8 + 24 and l4[8:12] == b"PMSH":
            kind = l4[8 + 5]
            seq = struct.unpack("!I", l4[8 + 8:8 + 12])[0]
            if kind == 1 and src_me:
                udp_req.setdefault(seq, (t, dst))
            elif kind == 2 and dst_me and seq in udp_req:
                t0, d = udp_req.pop(seq)
                udp[seq] = (d, t - t0)
        elif proto in (1, 58) and len(l4) >= 8:
            typ, ident, seq = l4[0], *struct.unpack("!HH", l4[4:8])
            request, reply = (8, 0) if proto == 1 else (128, 129)
            if typ == request and src_me:
                icmp_req[(dst, ident, seq)] = (t, len(l4))
            elif typ == reply and dst_me:
                req = icmp_req.pop((src, ident, seq), None)
                if req is not None:
                    icmp[(src, ident, seq, req[1])] = (req[0], t - req[0])
    return {"tcp": tcp, "udp": udp, "icmp": icmp}


# ---- matching ----------------------------------------------------------------------------------

def pingmesh_pairs(results, wire, t0_ns, t1_ns):
    """(proto, target address) -> list of (tool RTT us, wire RTT us) for the agent's OK results."""
    out = {}
    tcp_by_dst = {}
    for t, dst, rtt in wire["tcp"]:
        tcp_by_dst.setdefault(dst, []).append((t, rtt))
    icmp_by_seq = {}
    for (dst, _ident, seq, length), (t, rtt) in wire["icmp"].items():
        if length <= 24:  # pingmesh's echo: 8-byte header + 8-byte token (fping sends 64)
            icmp_by_seq.setdefault((dst, seq), []).append((t, rtt))
    for r in results:
        start_ns = r["ts_us"] * 1000
        if r["outcome"] != "ok" or not t0_ns <= start_ns <= t1_ns:
            continue
        dst, proto = r["addr"], r["proto"]
        wire_rtt = None
        if proto == "tcp":  # the first SYN to dst after the probe's start (one per 100 ms)
            cands = [(t, rtt) for t, rtt in tcp_by_dst.get(dst, ())
                     if start_ns - 1_000_000 <= t <= start_ns + 5_000_000]
            if cands and not r.get("retransmits"):
                wire_rtt = min(cands, key=lambda c: abs(c[0] - start_ns))[1]
        elif proto == "udp":
            w = wire["udp"].get(r.get("seq", 0))
            if w and w[0] == dst:
                wire_rtt = w[1]
        elif proto == "icmp":
            cands = icmp_by_seq.get((dst, r.get("seq", 0)), [])
            cands = [c for c in cands if abs(c[0] - start_ns) < 50_000_000]
            if len(cands) == 1:
                wire_rtt = cands[0][1]
        if wire_rtt is not None:
            out.setdefault((proto, dst), []).append((r["rtt_us"], wire_rtt / 1000))
    return out


def fping_pairs(fping_out, wire, targets, me_ids):
    """fping's n-th RTT of a target against the n-th fping echo request to it on the wire."""
    out = {}
    values = {}
    for line in fping_out.splitlines():
        if " : " in line:
            addr, _, rest = line.partition(" : ")
            values[addr.strip()] = rest.split()
    reqs = {}
    for (dst, ident, seq, length), (t, rtt) in wire["icmp"].items():
        if length > 24 and ident not in me_ids:
            reqs.setdefault(dst, []).append((t, rtt))
    lost_on_wire = {}
    for dst in targets:
        got = values.get(dst, [])
        answered = sorted(reqs.get(dst, []))
        pings = [v for v in got if v != "-"]
        lost_on_wire[dst] = len(got) - len(pings)
        if len(pings) != len(answered):  # matching by order needs every echo on the wire
            log(f"fping {dst}: {len(pings)} answers vs {len(answered)} on the wire: not matched")
            continue
        out[("icmp", dst)] = [(float(v) * 1000, rtt / 1000) for v, (_, rtt) in
                              zip(pings, answered)]
    return out


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def summarize(pairs):
    rows = []
    for (proto, dst), v in sorted(pairs.items()):
        err = [a - b for a, b in v]
        rows.append({"proto": proto, "target": dst, "n": len(v),
                     "wire_rtt_median_us": statistics.median(b for _, b in v),
                     "error_median_us": statistics.median(err),
                     "abs_error_median_us": statistics.median(abs(e) for e in err),
                     "abs_error_p99_us": pct([abs(e) for e in err], 0.99)})
    return rows


# ---- run ---------------------------------------------------------------------------------------

def measure(m, lab, env, a, workdir):
    m.register()
    m.start_agents()

    def probing():
        m.check_agents_running()
        seen = {(r["src"], r["addr"], r["proto"]) for r in m.results() if r["outcome"] == "ok"}
        return len(seen) >= 16 * 4 or f"{len(seen)} of 64 pair x family x protocol seen"
    wait_until("every pair probed", probing, 30)
    host = next(h for h in m.hosts if h["name"] == SOURCE)
    me = {host["ipv4"], host["ipv6"]}
    targets = sorted({r["addr"] for r in m.results() if r["src"] == SOURCE})
    log(f"{SOURCE} ({', '.join(sorted(me))}) probes {targets}")

    log(lab_cmd(lab, env, "fault", "delay", "rack:d1r1", str(a.delay_us), "--dir", "up",
                "--method", "nfqueue"))
    time.sleep(1.0)
    pcap = os.path.join(workdir, "capture.pcap")
    tcpdump_log = open(os.path.join(workdir, "tcpdump.log"), "w+")
    td = subprocess.Popen(["ip", "netns", "exec", host["netns"], "tcpdump", "-i", "eth0", "-n",
                           "-s", "128", "-B", "16384", "--immediate-mode",
                           "--time-stamp-precision=nano", "-Z", "root", "-w", pcap,
                           f"tcp port {PORT} or udp port {PORT} or icmp or icmp6"],
                          stdout=tcpdump_log, stderr=subprocess.STDOUT)
    try:
        wait_until("tcpdump listening", lambda: "listening on" in open(tcpdump_log.name).read()
                   or (td.poll() is not None
                       and f"tcpdump exited: {open(tcpdump_log.name).read()}"), 10, 0.1)
        time.sleep(0.5)
        count = int(a.seconds * 1000 / a.interval_ms)
        t0 = time.time_ns()
        fp = subprocess.run(["ip", "netns", "exec", host["netns"], "fping", "-C", str(count),
                             "-p", str(a.interval_ms), "-q", *targets], capture_output=True,
                            text=True, timeout=a.seconds * 2 + 30)
        t1 = time.time_ns()
        time.sleep(0.5)
    finally:
        if td.poll() is None:
            td.send_signal(signal.SIGINT)
            try:
                td.wait(10)
            except subprocess.TimeoutExpired:
                td.kill()
                td.wait()
    tcpdump_log.seek(0)
    log("tcpdump: " + " | ".join(x.strip() for x in tcpdump_log.read().splitlines()[-3:]))
    faults = lab_cmd(lab, env, "faults")
    log("delay line: " + " | ".join(x.strip() for x in faults.splitlines() if x.strip())[:500])
    lab_cmd(lab, env, "undo", "all")
    fping_out = fp.stdout + fp.stderr
    with open(os.path.join(workdir, "fping.txt"), "w") as f:
        f.write(fping_out)

    wire = wire_events(pcap, me)
    results = [r for r in m.results() if r["src"] == SOURCE]
    mine = pingmesh_pairs(results, wire, t0, t1 - a.interval_ms * 1_000_000)
    for proto in ("tcp", "udp", "icmp"):
        for dst in targets:
            ok = sum(1 for r in results if r["proto"] == proto and r["addr"] == dst
                     and r["outcome"] == "ok" and t0 <= r["ts_us"] * 1000 <= t1 - a.interval_ms
                     * 1_000_000)
            got = len(mine.get((proto, dst), []))
            log(f"pingmesh {proto} {dst}: {got} of {ok} OK results matched to the wire")
            if got < 0.9 * ok or ok == 0:
                raise Failure(f"pingmesh {proto} {dst}: only {got} of {ok} results matched")
    # pingmesh's ICMP identifiers, so fping's echoes are told apart also by id
    me_ids = {ident for (dst, ident, seq, length) in wire["icmp"] if length <= 24}
    theirs = fping_pairs(fping_out, wire, targets, me_ids)
    return {"targets": targets, "pingmesh": summarize(mine), "fping": summarize(theirs),
            "wire_counts": {k: len(v) for k, v in wire.items()}}


def print_table(res, delayed):
    print()
    print(f"| tool | protocol | target | probes | wire RTT median | error median | "
          f"abs error median | abs error p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for tool in ("pingmesh", "fping"):
        for r in res[tool]:
            where = f"{r['target']} ({'delayed' if r['target'] in delayed else 'same rack'})"
            print(f"| {tool} | {r['proto'].upper()} | {where} | {r['n']} | "
                  f"{r['wire_rtt_median_us']:.0f} µs | {r['error_median_us']:+.1f} µs | "
                  f"{r['abs_error_median_us']:.1f} µs | {r['abs_error_p99_us']:.1f} µs |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="pingmesh binary")
    ap.add_argument("--lab", default=os.path.join(REPO, "lab", "lab.sh"))
    ap.add_argument("--seconds", type=float, default=30, help="capture length (default 30)")
    ap.add_argument("--interval-ms", type=int, default=100,
                    help="probe interval of every agent and of fping (default 100)")
    ap.add_argument("--delay-us", type=int, default=1000, help="injected one-way delay")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--keep", help="keep the capture, logs and results in this directory")
    a = ap.parse_args()
    lab = os.path.abspath(a.lab)
    reason = skip_reason(lab)
    for tool in ("tcpdump", "fping", "iptables"):
        if not reason and not shutil.which(tool):
            reason = f"{tool} not installed (scripts/install-deps.sh)"
    if reason:
        print(f"SKIPPED: {reason}")
        return 0
    if not 1 <= a.seconds <= 600 or not 20 <= a.interval_ms <= 10000:
        ap.error("--seconds must be in 1..600 and --interval-ms in 20..10000")
    if a.keep and os.path.isdir(a.keep) and os.listdir(a.keep):
        ap.error(f"--keep {a.keep}: not empty (the agents would append to old result logs)")
    lock = open(LOCK, "a")
    log(f"waiting for {LOCK}")
    fcntl.flock(lock, fcntl.LOCK_EX)
    workdir = a.keep or tempfile.mkdtemp(prefix="pingmesh-rtt-accuracy-")
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, PMLAB_RUN_DIR=workdir)
    m = None
    rc = 1
    try:
        topo_file = os.path.join(workdir, "lab-topology.json")
        with open(topo_file, "w") as f:
            json.dump(LAB_TOPOLOGY, f)
        log(lab_cmd(lab, env, "up", topo_file).strip().splitlines()[-1])
        with open(os.path.join(workdir, "hosts.json")) as f:
            hosts = json.load(f)["hosts"]
        m = AgentMesh(os.path.abspath(a.binary), workdir, hosts, interval_ms=a.interval_ms)
        m.start_server()
        res = measure(m, lab, env, a, workdir)
        delayed = {h[f] for h in hosts if h["rack_name"] != "d1r1" for f in ("ipv4", "ipv6")}
        res["delayed_targets"] = sorted(delayed)
        res["settings"] = {"seconds": a.seconds, "interval_ms": a.interval_ms,
                           "delay_us": a.delay_us, "fault": "rack:d1r1 --dir up nfqueue"}
        print_table(res, delayed)
        print(f"\nwire events: {res['wire_counts']}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
        rc = 0
    except (Failure, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
        log(f"FAILED: {type(e).__name__}: {e}")
    finally:
        if m:
            m.close()
        subprocess.run([lab, "down"], capture_output=True, text=True, timeout=60, env=env)
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
    return rc


if __name__ == "__main__":
    sys.exit(main())
