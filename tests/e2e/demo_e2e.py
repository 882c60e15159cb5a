#!/usr/bin/env python3
"""The README's main command, end to end: `scripts/demo.sh --lab` (lab mode forced, so a fallback
to loopback is a failure) with the given binary, a temp state dir and a free port. Asserts: the
API on 10.255.0.1 shows all 24 agents alive across both DCs (dc-east in switch mode, dc-west in
rack mode), each DC registered with its fabric devices (2 spines, 3 ToRs, from `lab.sh devices`),
DC-matrix probe counts grow (results flowing), every DC cell filled; then Ctrl-C
(SIGINT to the demo) stops it within 30 s and nothing is left: no pm- namespace, no lab state,
no process started by the demo, the lab lock free. ~40 s. Prints "SKIPPED: <reason>" without
root or namespace rights, or when a lab is already up (unless CI=true / PMLAB_TEST_TAKEOVER=1,
which takes it down first, under the lock).

usage: demo_e2e.py --binary PATH [--demo scripts/demo.sh]
"""
import argparse
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesh import Failure, check, free_port, get_json, log, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOCK = "/tmp/pingmesh-lab.lock"


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft", "iptables", "flock", "curl"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    r = subprocess.run(["ip", "netns", "add", "pm-e2e-probe"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", "pm-e2e-probe"], capture_output=True)
    if os.path.exists("/run/pmlab/state.json"):
        if os.environ.get("CI") == "true" or os.environ.get("PMLAB_TEST_TAKEOVER") == "1":
            subprocess.run(["flock", "-w", "600", LOCK, os.path.join(REPO, "lab", "lab.sh"),
                            "down"], capture_output=True, timeout=660)
        else:
            return "a lab is already up on this machine (someone's demo?); set PMLAB_TEST_TAKEOVER=1"
    return None


def default_sigint():
    """In the demo's process: SIGINT back to its default. A job started in the background by a
    non-interactive shell inherits SIGINT ignored, and bash cannot trap a signal ignored at its
    start, so the demo would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def leftovers(state):
    out = []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    out += [f"namespace {line.split()[0]}" for line in ns.splitlines() if line.startswith("pm-")]
    if os.path.exists("/run/pmlab/state.json"):
        out.append("/run/pmlab/state.json")
    if subprocess.run(["ip", "link", "show", "pm-srv"], capture_output=True).returncode == 0:
        out.append("link pm-srv")
    ps = subprocess.run(["pgrep", "-af", state], capture_output=True, text=True).stdout
    out += [f"process {line}" for line in ps.splitlines()]
    with open(LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
        except OSError:
            out.append(f"{LOCK} still locked")
    return out


def dc_probes(url):
    mx = get_json(f"{url}/api/v1/matrix?level=dc&protocol=tcp&metric=probes")
    check(sorted(mx["rows"]) == ["dc-east", "dc-west"], f"DC matrix rows {mx['rows']}")
    cells = [c for row in mx["cells"] for c in row]
    return sum(c.get("value") or 0 for c in cells), sum(1 for c in cells if not c.get("value"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--demo", default=os.path.join(REPO, "scripts", "demo.sh"))
    a = ap.parse_args()
    reason = skip_reason()
    if reason:
        print(f"SKIPPED: {reason}")
        return 0
    state = tempfile.mkdtemp(prefix="pingmesh-demo-e2e-")
    port = free_port()
    url = f"http://10.255.0.1:{port}"
    t0 = time.monotonic()
    out = open(os.path.join(state, "demo.out"), "wb")
    demo = subprocess.Popen([a.demo, "--lab", "--lock-wait", "600", "--binary",
                             os.path.abspath(a.binary), "--state-dir", state, "--port", str(port),
                             "--interval-ms", "1000", "--run-for", "240"],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=default_sigint)
    ok = False
    try:
        def up():
            check(demo.poll() is None, f"demo exited with {demo.returncode}")
            return get_json(url + "/api/v1/status", timeout=2)
        st = wait_until("the demo's server", up, 660, 1.0)
        log(f"demo up after {time.monotonic() - t0:.0f}s: {st}")
        for dc, d in (("dc-east", 1), ("dc-west", 2)):
            # The fabric devices the analyzer's traceroutes map to a spine (from lab.sh devices).
            devs = wait_until(f"{dc}'s fabric devices", lambda: get_json(
                f"{url}/api/v1/dcs/{dc}").get("devices") or "none yet", 30, 1.0)
            spines = sorted(x["name"] for x in devs if x.get("layer") == "spine")
            tors = sorted(x["name"] for x in devs if x.get("layer") == "tor")
            check(spines == [f"d{d}s1", f"d{d}s2"] and len(tors) == 3
                  and all(x["addresses"] for x in devs), f"{dc} devices: {devs}")
        log("both DCs registered with their 2 spines and 3 ToRs")

        def alive():
            st = get_json(url + "/api/v1/status")
            srv = get_json(url + "/api/v1/servers?limit=1000")["items"]
            dcs = {s["dc"] for s in srv if s.get("alive")}
            return (st["alive"] == 24 and dcs == {"dc-east", "dc-west"}) or \
                f"alive {st['alive']}/24, DCs {dcs}"
        wait_until("24 agents alive in both DCs", alive, 40, 1.0)
        log("24 agents alive across dc-east (switch mode) and dc-west (rack mode)")
        first = wait_until("DC matrix with probes", lambda: (lambda p: p[0] > 0 and p or
                           f"probes {p}")(dc_probes(url)), 30, 1.0)
        second = wait_until("results flowing", lambda: (lambda p: p[0] > first[0] and p[1] == 0
                            and p or f"probes {p} (first {first})")(dc_probes(url)), 30, 1.0)
        log(f"DC matrix tcp probes {first[0]} -> {second[0]}, every cell filled")
        log("--- Ctrl-C")
        demo.send_signal(signal.SIGINT)
        try:
            rc = demo.wait(30)
        except subprocess.TimeoutExpired:
            raise Failure("demo still running 30 s after SIGINT")
        log(f"demo exited with {rc}")
        left = leftovers(state)
        check(not left, f"left behind: {left}")
        log("nothing left: no pm- namespace, lab state, pm-srv, demo process; lock free")
        ok = True
    except Failure as e:
        log(f"FAILED: {e}")
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
        out.close()
        if not ok:
            with open(os.path.join(state, "demo.out"), errors="replace") as f:
                log("demo output:\n" + f.read()[-3000:])
        log(f"{'PASSED' if ok else 'FAILED'} in {time.monotonic() - t0:.1f}s (state {state})")
        if ok:
            shutil.rmtree(state, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
