"""Shared parts of the namespace-lab end-to-end tests (lab_e2e.py, lab_trace_e2e.py,
agent_lab_e2e.py): when to skip, running lab/lab.sh, the fabric devices it reports, and the
harness every lab test runs in (lab up in the test's work dir, server, the test's phases, and
on any exit: every process killed by PID, `lab.sh down`, PASSED/FAILED with the duration).

The caller holds the lab lock (/tmp/pingmesh-lab.lock; ctest wraps the tests in flock).
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
from mesh import Failure, check, install_signal_handlers, log  # noqa: E402


def skip_reason(lab, tools=()):
    """Why a lab test cannot run here (None: it can): root, ip/nft (and `tools`), the right to
    create a network namespace, and no lab already up unless CI=true or PMLAB_TEST_TAKEOVER=1
    (`lab.sh up` then replaces it)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft", *tools):
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
    """Runs `lab.sh ARGS`; fails the test on a non-zero exit. Returns its output."""
    r = subprocess.run([lab, *args], capture_output=True, text=True, timeout=timeout, env=env)
    check(r.returncode == 0, f"lab.sh {' '.join(args)}: exit {r.returncode}: {r.stderr[-1500:]}"
          f"{r.stdout[-500:]}")
    return (r.stdout + r.stderr).strip() or "(no output)"


def fabric_devices(lab, env, dc):
    """DC `dc`'s (number or name) spines and ToRs with every port address, as the API's DC
    `devices` (`lab.sh devices`)."""
    r = subprocess.run([lab, "devices", str(dc)], capture_output=True, text=True, timeout=60,
                       env=env)
    check(r.returncode == 0, f"lab.sh devices {dc}: exit {r.returncode}: {r.stderr[-500:]}")
    return json.loads(r.stdout)


def lab_up(lab, env, workdir, topology):
    """`lab.sh up` of `topology` (a dict, written to the work dir); returns hosts.json."""
    topo_file = os.path.join(workdir, "lab-topology.json")
    with open(topo_file, "w") as f:
        json.dump(topology, f)
    log("--- lab up")
    log(lab_cmd(lab, env, "up", topo_file).strip().splitlines()[-1])
    with open(os.path.join(env["PMLAB_RUN_DIR"], "hosts.json")) as f:
        return json.load(f)


class Phases:
    """Wall-clock time per phase of a test, logged as each ends and summed up at the end."""

    def __init__(self):
        self.t = time.monotonic()
        self.done = []

    def end(self, name):
        now = time.monotonic()
        self.done.append((name, now - self.t))
        log(f"[phase] {name}: {now - self.t:.1f}s")
        self.t = now

    def summary(self):
        return ", ".join(f"{n} {s:.0f}s" for n, s in self.done)


def main(doc, topology, make_mesh, run, workdir_prefix, tools=(), fresh_workdir=False):
    """The harness of a lab test: arguments (--binary, --lab, --workdir, --keep-lab), skip,
    lab up, `make_mesh(binary, workdir, desc)` (a mesh.Mesh), its server, `run(m, lab, env,
    started)`, then cleanup. `fresh_workdir`: refuse a --workdir that is not empty (the test
    counts files in it). Returns the exit code."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--lab", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--keep-lab", action="store_true")
    a = ap.parse_args()
    lab = os.path.abspath(a.lab)
    reason = skip_reason(lab, tools)
    if reason:
        print(f"SKIPPED: {reason}")
        return 0
    install_signal_handlers()
    if fresh_workdir and a.workdir and os.path.isdir(a.workdir) and os.listdir(a.workdir):
        print(f"--workdir {a.workdir}: not empty (old result logs and database would be counted)",
              file=sys.stderr)
        return 2
    workdir = a.workdir or tempfile.mkdtemp(prefix=workdir_prefix)
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, PMLAB_RUN_DIR=workdir)
    t_start = time.monotonic()
    started = time.time() - 60
    m = None
    ok = False
    try:
        desc = lab_up(lab, env, workdir, topology)
        m = make_mesh(os.path.abspath(a.binary), workdir, desc)
        m.start_server()
        run(m, lab, env, started)
        ok = True
    except (Failure, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
        log(f"FAILED: {type(e).__name__}: {e}")
        if m:
            log("server log tail:\n" + m.tail("server.log"))
            if m.agents:
                first = sorted(m.agents)[0]
                log(f"agent {first} log tail:\n" + m.tail(f"agent-{first}.log", 15))
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
