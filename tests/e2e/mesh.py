"""A loopback pingmesh mesh for end-to-end tests: the real `pingmesh server` and one real
`pingmesh agent` per server, each agent bound to its own 127.77.x.y address.

Python 3 standard library only. Every process started here is killed by PID when the Mesh is
closed (also on failure, SIGTERM from ctest, or the test being killed: children get
PR_SET_PDEATHSIG)."""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ADMIN_TOKEN = "e2e-admin-token"
AGENT_TOKEN = "e2e-agent-token"
PROTOCOLS = ("tcp", "udp", "icmp", "http")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def _pdeathsig():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free_on(addrs, port):
    for a in addrs:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                if kind == socket.SOCK_STREAM:  # as the agent does: TIME_WAIT is no conflict
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((a, port))
                except OSError:
                    return False
    return True


def http(method, url, body=None, token=None, headers=None, timeout=5):
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else (
            body.encode() if isinstance(body, str) else body)
        hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_json(url, timeout=5):
    status, text = http("GET", url, timeout=timeout)
    if status != 200:
        raise Failure(f"GET {url}: HTTP {status}: {text[:300]}")
    return json.loads(text)


def wait_until(what, fn, timeout_s, interval_s=0.5):
    """Polls fn() until it returns a truthy value; fails with the last value after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = fn()
            if last and not isinstance(last, str):
                return last
        except (OSError, Failure, ValueError) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout_s}s waiting for {what}; last: {last}")
        time.sleep(interval_s)


def icmp_allowed():
    """Root (raw sockets) or an unprivileged ping socket allowed for our group."""
    if os.geteuid() == 0:
        return True
    try:
        lo, hi = map(int, open("/proc/sys/net/ipv4/ping_group_range").read().split())
        return any(lo <= g <= hi for g in [os.getegid()] + os.getgroups())
    except (OSError, ValueError):
        return False


def topology(dcs=2, racks=2, servers=2, interval_ms=1000, tcp_port=29101, http_port=29102):
    """Rack mode, dcs x racks x servers; server dD-rR-sS at 127.77.D.(R*10+S)."""
    probes = [{"protocol": "tcp", "port": tcp_port}, {"protocol": "udp", "port": tcp_port},
              {"protocol": "icmp"}, {"protocol": "http", "port": http_port}]
    if not icmp_allowed():
        probes = [p for p in probes if p["protocol"] != "icmp"]
    topo = {"settings": {"stopped": False, "liveness_timeout_s": 30}, "dcs": [], "racks": [],
            "servers": []}
    for d in range(1, dcs + 1):
        topo["dcs"].append({"name": f"dc{d}", "mode": "rack", "probes": probes,
                            "interval_ms": interval_ms, "ipv6": False})
        for r in range(1, racks + 1):
            topo["racks"].append({"dc": f"dc{d}", "name": f"dc{d}-r{r}"})
            for s in range(1, servers + 1):
                topo["servers"].append({"name": f"dc{d}-r{r}-s{s}", "dc": f"dc{d}",
                                        "rack": f"dc{d}-r{r}",
                                        "addresses": [f"127.77.{d}.{r * 10 + s}"]})
    return topo


class Mesh:
    def __init__(self, binary, workdir, topo, tcp_port=29101, http_port=29102, web_dir=None,
                 min_interval_ms=1000, listen_host="127.0.0.1"):
        self.binary = binary
        self.dir = workdir
        self.topo = topo
        self.tcp_port = tcp_port
        self.http_port = http_port
        self.web_dir = web_dir
        self.min_interval_ms = min_interval_ms
        self.port = free_port(listen_host)
        self.url = f"http://{listen_host}:{self.port}"
        self.listen_host = listen_host
        self.server = None
        self.server_starts = 0
        self.agents = {}  # name -> Popen
        os.makedirs(workdir, exist_ok=True)

    # -- processes ------------------------------------------------------------------------
    def _spawn(self, args, logname, prefix=()):
        logf = open(os.path.join(self.dir, logname), "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGMESH_")}
        p = subprocess.Popen(list(prefix) + [self.binary] + args, stdout=logf,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             preexec_fn=_pdeathsig)
        logf.close()
        return p

    def start_server(self, timeout_s=20):
        self.server_starts += 1
        args = ["server", "--listen", f"{self.listen_host}:{self.port}",
                "--db", os.path.join(self.dir, "pingmesh.db"),
                "--data-dir", os.path.join(self.dir, "data"),
                "--admin-token", ADMIN_TOKEN, "--agent-token", AGENT_TOKEN,
                "--min-interval-ms", str(self.min_interval_ms),
                "--heartbeat-interval-s", "1", "--log-level", "info"]
        if self.web_dir:
            args += ["--web-dir", self.web_dir]
        self.server = self._spawn(args, "server.log")
        log(f"server pid {self.server.pid} on {self.url} (start #{self.server_starts})")

        def up():
            if self.server.poll() is not None:
                raise Failure(f"server exited with {self.server.returncode}:\n"
                              + self.tail("server.log"))
            try:
                return http("GET", self.url + "/healthz", timeout=1)[0] == 200
            except OSError:
                return False
        wait_until("server /healthz", up, timeout_s, 0.1)

    def stop_server(self, timeout_s=20):
        p, self.server = self.server, None
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Failure(f"server did not exit within {timeout_s}s of SIGTERM")

    def import_topology(self):
        status, text = http("PUT", self.url + "/api/v1/topology", self.topo, token=ADMIN_TOKEN)
        check(status in (200, 204), f"PUT /api/v1/topology: HTTP {status}: {text[:500]}")

    def servers(self):
        return self.topo["servers"]

    def start_agents(self):
        addrs = [s["addresses"][0] for s in self.servers()]
        for port in (self.tcp_port, self.http_port):
            check(port_free_on(addrs, port), f"port {port} already bound on a 127.77.x address")
        for s in self.servers():
            a = s["addresses"][0]
            args = ["agent", "--server", self.url, "--token", AGENT_TOKEN, "--name", s["name"],
                    "--address", a, "--listen-address", a, "--dc", s["dc"],
                    "--tcp-port", str(self.tcp_port), "--udp-port", str(self.tcp_port),
                    "--http-port", str(self.http_port), "--lab-min-interval-ms", "1000",
                    "--heartbeat-interval-ms", "1000", "--pull-interval-ms", "1000",
                    "--batch-interval-ms", "1000", "--upload-backoff-ms", "200",
                    "--upload-backoff-max-ms", "1000", "--upload-attempts", "20",
                    "--probe-timeout-ms", "900", "--log-level", "info"]
            self.agents[s["name"]] = self._spawn(args, f"agent-{s['name']}.log")
        log(f"started {len(self.agents)} agents: "
            + ", ".join(f"{n}={p.pid}" for n, p in self.agents.items()))

    def check_agents_running(self):
        for n, p in self.agents.items():
            check(p.poll() is None, f"agent {n} exited with {p.returncode}:\n"
                  + self.tail(f"agent-{n}.log"))

    def close(self):
        for n, p in list(self.agents.items()):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in list(self.agents.values()) + ([self.server] if self.server else []):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.agents = {}
        self.server = None

    def tail(self, logname, n=30):
        try:
            with open(os.path.join(self.dir, logname), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- observations -----------------------------------------------------------------------
    def agent_metrics(self, name):
        addr = next(s["addresses"][0] for s in self.servers() if s["name"] == name)
        status, text = http("GET", f"http://{addr}:{self.http_port}/metrics", timeout=2)
        check(status == 200, f"agent {name} /metrics: HTTP {status}")
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            metric = key.split("{", 1)[0]
            try:
                out[metric] = out.get(metric, 0.0) + float(value)
            except ValueError:
                pass
        return out

    def probes_total(self):
        """Per agent: sum of pingmesh_agent_probes_total over protocols and outcomes."""
        return {n: self.agent_metrics(n).get("pingmesh_agent_probes_total", 0.0)
                for n in self.agents}

    def matrix(self, level, protocol, metric, dc=None, frm=None):
        q = f"level={level}&protocol={protocol}&metric={metric}"
        if dc:
            q += f"&dc={dc}"
        if frm:
            q += f"&from={int(frm)}"
        return get_json(f"{self.url}/api/v1/matrix?{q}")

    def active_alerts(self):
        alerts = get_json(self.url + "/api/v1/alerts?state=active")["alerts"]
        return alerts


def install_signal_handlers():
    def handler(signum, frame):
        raise SystemExit(f"killed by signal {signum}")
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
