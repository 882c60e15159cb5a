// A small stand-in for `pingmesh server` while the real one is being built: serves web/dist and
// the API shapes the UI uses (docs/UI.md), with synthetic, deterministic data. Loopback only.
//
//   node tests/mock-server.mjs [--port 9080] [--dist dist]
//   MOCK_TOKEN=secret  → write calls need "Authorization: Bearer secret"
//   MOCK_NO_ANALYZER=1 → /api/v1/alerts and /api/v1/alert-rules answer 404 (not built)

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const arg = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : def;
};
const PORT = Number(arg("port", process.env.PORT ?? "9080"));
const DIST = path.resolve(arg("dist", path.join(here, "..", "dist")));
const TOKEN = process.env.MOCK_TOKEN ?? "";
const NO_ANALYZER = process.env.MOCK_NO_ANALYZER === "1";

// ---- deterministic pseudo-random ------------------------------------------------------------
function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) / 4294967296;
}

// "red crosses": everything to and from these racks is slow and lossy; "white crosses": no data
const BAD_RACKS = new Set(["dc1-r3", "big-r7"]);
const DOWN_RACKS = new Set(["dc3-r2", "big-r18"]);
const BAD_RACK = "dc1-r3";

// ---- topology -------------------------------------------------------------------------------
const now = () => Date.now();
const state = { stopped: false, generation: 1 };
const dcs = new Map();
const racks = new Map(); // key dc/name
const servers = new Map();
const rules = new Map();
const alertRules = new Map();

function addDc(name, nRacks, perRack, extra = {}) {
  dcs.set(name, {
    name, mode: "rack", probes: [{ protocol: "tcp", port: 9001 }], interval_ms: 10000, payload_bytes: 0,
    dscp: 0, rack_ratio: 1, server_ratio: 1, inter_dc_servers: 4, max_peers: 0, ipv4: true, ipv6: true,
    stopped: false, description: "", ...extra,
  });
  const dcIndex = dcs.size;
  for (let r = 1; r <= nRacks; r++) {
    const rack = `${name}-r${r}`;
    racks.set(`${name}/${rack}`, { dc: name, name: rack, cidrs: [`10.${dcIndex}.${r}.0/24`], description: "" });
    for (let s = 1; s <= perRack; s++) {
      const sname = `${rack}-s${s}`;
      const dead = DOWN_RACKS.has(rack);
      servers.set(sname, {
        name: sname, dc: name, rack, addresses: [`10.${dcIndex}.${r}.${s + 10}`], hostname: `${sname}.example.internal`,
        last_seen_ms: dead ? now() - 3600_000 : now() - Math.floor(hash(sname) * 20000),
        agent_version: hash(sname + "v") < 0.1 ? "0.9.0" : "1.0.0",
      });
    }
  }
}
addDc("dc1", 8, 6);
addDc("dc2", 6, 5);
addDc("dc3", 4, 4);
addDc("big", 25, 40, { description: "1,000 servers, for rendering speed" });
for (const [name, level] of [["intra-rack", "intra-rack"], ["intra-dc", "intra-dc"], ["inter-dc", "inter-dc"]]) {
  rules.set(name, { name, level, src_dc: "*", dst_dc: "*", symmetric: true, action: "add", probes: [] });
}
alertRules.set("p99-high", { name: "p99-high", metric: "p99", level: "rack_pair", above_us: 5000, for_s: 30 });
alertRules.set("loss-high", { name: "loss-high", metric: "loss", level: "rack_pair", above: 0.001, for_s: 30 });

const alive = (s) => now() - s.last_seen_ms < 90_000;
const keepAlive = () => {
  for (const s of servers.values()) if (!DOWN_RACKS.has(s.rack)) s.last_seen_ms = now() - Math.floor(hash(s.name + now()) * 15000);
};
setInterval(keepAlive, 5000).unref();

// ---- synthetic measurements -----------------------------------------------------------------
const DC_RTT = { "dc1|dc2": 2100, "dc1|dc3": 2600, "dc2|dc3": 7200, "big|dc1": 1800, "big|dc2": 2500, "big|dc3": 3100 };
function baseUs(srcDc, dstDc, srcRack, dstRack) {
  if (srcDc !== dstDc) return DC_RTT[[srcDc, dstDc].sort().join("|")] ?? 2000;
  if (srcRack !== dstRack) return 260;
  return 216;
}
const FACTOR = { p50: 1, p90: 2.2, p99: 5.5, p999: 9, p9999: 14, mean: 1.3, max: 30 };

function measure(metric, srcDc, dstDc, srcRack, dstRack, key, protocol) {
  const downside = DOWN_RACKS.has(srcRack) || DOWN_RACKS.has(dstRack);
  const stopped = state.stopped || dcs.get(srcDc)?.stopped;
  if (downside || stopped) return { value: null, samples: 0, missing: true };
  const bad = BAD_RACKS.has(srcRack) || BAD_RACKS.has(dstRack);
  const jitter = 0.85 + 0.3 * hash(key + metric + protocol);
  const samples = 360 + Math.floor(hash(key) * 10);
  if (metric === "probes") return { value: samples, samples, missing: false };
  if (metric === "loss") {
    const loss = bad ? 0.02 * jitter : hash(key + "l") < 0.03 ? 0.003 : 1e-5 * jitter;
    return { value: loss, samples, missing: false };
  }
  const b = baseUs(srcDc, dstDc, srcRack, dstRack) * (protocol === "icmp" ? 0.8 : 1);
  const inter = srcDc !== dstDc;
  const tail = inter ? 1 + (FACTOR[metric] ?? 1) * 0.05 : FACTOR[metric] ?? 1;
  let v = b * tail * jitter;
  if (bad && metric !== "p50") v *= 4.5;
  return { value: Math.round(v), samples, missing: false };
}

const serversOf = (dc, rack) => [...servers.values()].filter((s) => s.dc === dc && (rack === undefined || s.rack === rack));
const racksOf = (dc) => [...racks.values()].filter((r) => r.dc === dc);
const natural = (a, b) => a.localeCompare(b, "en", { numeric: true });

const matrixCache = new Map();
function matrix(q) {
  const metric = q.get("metric") ?? "p99";
  const level = q.get("level") ?? "dc";
  const protocol = q.get("protocol") ?? "";
  const dc = q.get("dc") ?? "";
  const srcRack = q.get("src_rack") ?? "";
  const dstRack = q.get("dst_rack") ?? "";
  const from = Number(q.get("from") ?? 0);
  const to = Number(q.get("to") ?? 0);
  const unit = metric === "loss" ? "ratio" : metric === "probes" ? "count" : "us";
  const key = [metric, level, protocol, dc, srcRack, dstRack, state.stopped, JSON.stringify([...dcs.values()].map((d) => d.stopped))].join("|");
  let body = matrixCache.get(key);
  if (body === undefined) {
    let rows;
    let cols;
    let cell;
    if (level === "dc") {
      rows = cols = [...dcs.keys()].sort(natural);
      cell = (a, b) => measure(metric, a, b, "", "", `${a}|${b}`, protocol);
    } else if (level === "rack") {
      if (!dcs.has(dc)) return null;
      rows = cols = racksOf(dc).map((r) => r.name).sort(natural);
      cell = (a, b) => measure(metric, dc, dc, a, b, `${a}|${b}`, protocol);
    } else {
      if (!dcs.has(dc)) return null;
      const rs = srcRack !== "" ? serversOf(dc, srcRack) : serversOf(dc);
      const cs = dstRack !== "" ? serversOf(dc, dstRack) : srcRack !== "" ? rs : serversOf(dc);
      rows = rs.map((s) => s.name).sort(natural);
      cols = cs.map((s) => s.name).sort(natural);
      const rackOf = (n) => servers.get(n)?.rack ?? "";
      cell = (a, b) => (a === b ? { value: null, samples: 0, missing: true } : measure(metric, dc, dc, rackOf(a), rackOf(b), `${a}|${b}`, protocol));
    }
    const cells = rows.map((a) => cols.map((b) => cell(a, b)));
    body = JSON.stringify({ rows, cols, cells, metric, unit });
    if (matrixCache.size > 64) matrixCache.clear();
    matrixCache.set(key, body);
  }
  return `${body.slice(0, -1)},"from":${from},"to":${to}}`;
}

function series(q) {
  const scope = q.get("scope") ?? "pair";
  const src = q.get("src") ?? "";
  const dst = q.get("dst") ?? "";
  const metric = q.get("metric") ?? "p99";
  const protocol = q.get("protocol") ?? "";
  const from = Number(q.get("from"));
  const to = Number(q.get("to"));
  const step = Math.max(10, Number(q.get("step") ?? 60));
  let srcDc, dstDc, srcRack, dstRack;
  if (scope === "dc_pair") {
    [srcDc, dstDc, srcRack, dstRack] = [src, dst, "", ""];
    if (!dcs.has(src) || !dcs.has(dst)) return null;
  } else if (scope === "rack_pair") {
    const dc = q.get("dc") ?? [...racks.values()].find((r) => r.name === src)?.dc;
    [srcDc, dstDc, srcRack, dstRack] = [dc, dc, src, dst];
  } else {
    const a = servers.get(src);
    const b = scope === "server" ? a : servers.get(dst);
    if (a === undefined || b === undefined) return null;
    [srcDc, dstDc, srcRack, dstRack] = [a.dc, b.dc, a.rack, b.rack];
  }
  const unit = metric === "loss" ? "ratio" : metric === "probes" ? "count" : "us";
  const points = [];
  const start = Math.ceil(from / step) * step;
  for (let t = start; t <= to && points.length < 5000; t += step) {
    const m = measure(metric, srcDc, dstDc, srcRack, dstRack, `${src}|${dst}|${t}`, protocol);
    // an incident 20-30 % into the window, for the charts to show something
    const incident = t > from + (to - from) * 0.2 && t < from + (to - from) * 0.3;
    if (!m.missing && incident) m.value = metric === "loss" ? m.value + 0.01 : Math.round(m.value * 3);
    points.push({ t, value: m.value, samples: m.samples });
  }
  return { points, unit, from, to, step };
}

function pinglistSummary(s) {
  const dc = dcs.get(s.dc);
  const stopped = state.stopped || dc.stopped;
  const chosen = alive(s) && hash(s.name + "c") < dc.server_ratio + 1e-9 && hash(s.rack + "rc") < dc.rack_ratio + 1e-9;
  const rackPeers = serversOf(s.dc, s.rack).length - 1;
  const racksInDc = racksOf(s.dc).length - 1;
  const entries = stopped || !chosen ? 0 : Math.round(rackPeers * dc.server_ratio) + Math.round(racksInDc * dc.rack_ratio) + 4 * (dcs.size - 1);
  return { server: s.name, dc: s.dc, rack: s.rack, entries, chosen, alive: alive(s), stopped, version: state.generation };
}

function alerts() {
  const t = Math.floor(now() / 1000);
  const items = [
    {
      id: "a1", rule: "p99-high", state: "firing", severity: "critical",
      scope: { dc: "dc1", src_rack: BAD_RACK, dst_rack: "dc1-r1" }, started_at: t - 900, resolved_at: null,
      summary: `P99 latency above 5 ms from and to rack ${BAD_RACK}`,
      verdict: { component: `ToR ${BAD_RACK}`, kind: "tor", confidence: 0.9, evidence: [`7 of 7 racks see P99 > 5 ms to ${BAD_RACK}`, `ToR score 1.0 (threshold 0.6)`, "other racks of dc1 healthy"] },
    },
    {
      id: "a2", rule: "loss-high", state: "firing", severity: "warning",
      scope: { src_dc: "dc2", dst_dc: "dc3" }, started_at: t - 300, resolved_at: null,
      summary: "loss 0.3 % between dc2 and dc3",
      verdict: { component: "inter-DC link dc2–dc3", kind: "wan", confidence: 0.6, evidence: ["all server pairs dc2→dc3 affected"] },
    },
    {
      id: "a3", rule: "p99-high", state: "resolved", severity: "critical",
      scope: { dc: "dc2", src_rack: "dc2-r4", dst_rack: "dc2-r4" }, started_at: t - 86400, resolved_at: t - 80000,
      summary: "P99 above 5 ms inside rack dc2-r4", verdict: null,
    },
  ];
  if (state.stopped) items.push({ id: "a4", rule: "probing-stopped", state: "firing", severity: "info", scope: {}, started_at: t, resolved_at: null, summary: "probing is stopped by the kill switch", verdict: null });
  return { items, total: items.length, offset: 0, limit: items.length };
}

// ---- validation like the real controller ----------------------------------------------------
class ApiErr extends Error {
  constructor(status, message, field = "") {
    super(message);
    this.status = status;
    this.field = field;
  }
}
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
function checkName(v, field) {
  if (typeof v !== "string" || !NAME.test(v)) throw new ApiErr(422, "must be 1..64 characters of [A-Za-z0-9._-]", field);
}
function checkProbes(probes) {
  if (!Array.isArray(probes)) throw new ApiErr(422, "must be an array", "probes");
  probes.forEach((p, i) => {
    if (!["tcp", "udp", "icmp", "http"].includes(p.protocol)) throw new ApiErr(422, "must be one of tcp, udp, icmp, http", `probes[${i}].protocol`);
    const min = p.protocol === "icmp" ? 0 : 1;
    if (!Number.isInteger(p.port) || p.port < min || p.port > 65535) throw new ApiErr(422, `must be an integer in ${min}..65535, got ${p.port}`, `probes[${i}].port`);
    if (p.dscp !== undefined && (!Number.isInteger(p.dscp) || p.dscp < 0 || p.dscp > 63)) throw new ApiErr(422, "must be an integer in 0..63", `probes[${i}].dscp`);
  });
}
function validateDc(d) {
  checkName(d.name, "name");
  if (!["rack", "switch"].includes(d.mode)) throw new ApiErr(422, "must be one of rack, switch", "mode");
  checkProbes(d.probes);
  if (d.probes.length === 0) throw new ApiErr(422, "must hold at least one probe", "probes");
  if (!(d.interval_ms >= 10000 && d.interval_ms <= 3600000)) throw new ApiErr(422, `must be an integer in 10000..3600000, got ${d.interval_ms}`, "interval_ms");
  if (!(d.payload_bytes >= 0 && d.payload_bytes <= 65536)) throw new ApiErr(422, `must be an integer in 0..65536, got ${d.payload_bytes}`, "payload_bytes");
  for (const k of ["rack_ratio", "server_ratio"]) {
    if (!(typeof d[k] === "number" && d[k] > 0 && d[k] <= 1)) throw new ApiErr(422, `must be a number in (0, 1], got ${d[k]}`, k);
  }
  if (!d.ipv4 && !d.ipv6) throw new ApiErr(422, "at least one of ipv4 and ipv6 must be true", "ipv6");
}

// ---- HTTP -----------------------------------------------------------------------------------
function send(res, status, body, type = "application/json") {
  const data = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": type, "cache-control": "no-cache" });
  res.end(data);
}
function page(items, q) {
  const offset = Number(q.get("offset") ?? 0);
  const limit = Number(q.get("limit") ?? 100);
  return { items: items.slice(offset, offset + limit), total: items.length, offset, limit };
}
const readBody = (req) =>
  new Promise((resolve, reject) => {
    let s = "";
    req.on("data", (c) => (s += c));
    req.on("end", () => {
      if (s.trim() === "") return resolve(undefined);
      try {
        resolve(JSON.parse(s));
      } catch {
        reject(new ApiErr(400, "body is not JSON", "body"));
      }
    });
  });
const regen = () => {
  state.generation++;
};
const serverJson = (s) => ({ ...s, alive: alive(s) });

async function handleApi(req, res, url) {
  const q = url.searchParams;
  const parts = url.pathname.split("/").slice(3).map(decodeURIComponent); // after /api/v1
  const m = req.method;
  if (m !== "GET" && TOKEN !== "" && req.headers.authorization !== `Bearer ${TOKEN}`) {
    throw new ApiErr(req.headers.authorization ? 403 : 401, "admin token required");
  }
  const body = m === "GET" ? undefined : await readBody(req);
  const [a, b, c, d] = parts;
  const notFound = (what) => new ApiErr(404, `no such ${what}`, "name");
  switch (a) {
    case "status":
      return send(res, 200, statusJson());
    case "stop":
    case "resume": {
      if (m !== "POST") break;
      const dc = body?.dc;
      if (dc !== undefined) {
        if (!dcs.has(dc)) throw new ApiErr(404, `no DC named '${dc}'`, "dc");
        dcs.get(dc).stopped = a === "stop";
      } else {
        state.stopped = a === "stop";
      }
      regen();
      return send(res, 200, statusJson());
    }
    case "dcs": {
      if (b === undefined) {
        if (m === "GET") return send(res, 200, page([...dcs.values()], q));
        if (m === "POST") {
          const dc = { ...dcs.values().next().value, stopped: false, description: "", ...body };
          validateDc(dc);
          if (dcs.has(dc.name)) throw new ApiErr(409, `DC '${dc.name}' exists`, "name");
          dcs.set(dc.name, dc);
          regen();
          return send(res, 201, dc);
        }
        break;
      }
      const dc = dcs.get(b);
      if (c === "racks") {
        if (dc === undefined) throw notFound("DC");
        if (d === undefined) {
          if (m === "GET") return send(res, 200, page(racksOf(b), q));
          if (m === "POST") {
            checkName(body?.name, "name");
            racks.set(`${b}/${body.name}`, { dc: b, cidrs: [], description: "", ...body });
            regen();
            return send(res, 201, racks.get(`${b}/${body.name}`));
          }
          break;
        }
        const rack = racks.get(`${b}/${d}`);
        if (rack === undefined) throw notFound("rack");
        if (m === "GET") return send(res, 200, rack);
        if (m === "PUT") {
          (body.cidrs ?? []).forEach((cidr, i) => {
            if (!/^[0-9a-fA-F.:]+\/\d+$/.test(cidr)) throw new ApiErr(422, `'${cidr}' is not a CIDR prefix such as 10.0.1.0/24`, `cidrs[${i}]`);
          });
          racks.set(`${b}/${d}`, { ...rack, ...body, dc: b, name: d });
          regen();
          return send(res, 200, racks.get(`${b}/${d}`));
        }
        if (m === "DELETE") {
          racks.delete(`${b}/${d}`);
          regen();
          return send(res, 204, "");
        }
        break;
      }
      if (dc === undefined) throw notFound("DC");
      if (m === "GET") return send(res, 200, dc);
      if (m === "PUT" || m === "PATCH") {
        const next = m === "PUT" ? { ...body } : { ...dc, ...body };
        validateDc(next);
        if (next.name !== b) throw new ApiErr(422, "cannot rename", "name");
        dcs.set(b, next);
        regen();
        return send(res, 200, next);
      }
      if (m === "DELETE") {
        dcs.delete(b);
        regen();
        return send(res, 204, "");
      }
      break;
    }
    case "servers": {
      if (b === undefined) {
        if (m === "GET") {
          const dc = q.get("dc");
          const rack = q.get("rack");
          const list = [...servers.values()].filter((s) => (!dc || s.dc === dc) && (!rack || s.rack === rack)).map(serverJson);
          return send(res, 200, page(list, q));
        }
        if (m === "POST") {
          checkName(body?.name, "name");
          if (!Array.isArray(body.addresses) || body.addresses.length === 0) throw new ApiErr(422, "needs at least one address", "addresses");
          servers.set(body.name, { hostname: "", rack: "", last_seen_ms: 0, agent_version: "", ...body });
          regen();
          return send(res, 201, serverJson(servers.get(body.name)));
        }
        break;
      }
      const s = servers.get(b);
      if (s === undefined) throw notFound("server");
      if (m === "GET") return send(res, 200, serverJson(s));
      if (m === "PUT") {
        if (!Array.isArray(body.addresses) || body.addresses.length === 0) throw new ApiErr(422, "needs at least one address", "addresses");
        servers.set(b, { ...s, ...body, name: b });
        regen();
        return send(res, 200, serverJson(servers.get(b)));
      }
      if (m === "DELETE") {
        servers.delete(b);
        regen();
        return send(res, 204, "");
      }
      break;
    }
    case "rules": {
      if (b === undefined) {
        if (m === "GET") return send(res, 200, page([...rules.values()], q));
        if (m === "POST") {
          checkName(body?.name, "name");
          checkProbes(body.probes ?? []);
          rules.set(body.name, body);
          regen();
          return send(res, 201, body);
        }
        break;
      }
      if (!rules.has(b)) throw notFound("rule");
      if (m === "GET") return send(res, 200, rules.get(b));
      if (m === "PUT") {
        checkProbes(body.probes ?? []);
        rules.set(b, { ...body, name: b });
        regen();
        return send(res, 200, rules.get(b));
      }
      if (m === "DELETE") {
        rules.delete(b);
        regen();
        return send(res, 204, "");
      }
      break;
    }
    case "pinglists": {
      const dc = q.get("dc");
      const list = [...servers.values()].filter((s) => !dc || s.dc === dc).map(pinglistSummary);
      return send(res, 200, { ...page(list, q), stopped: state.stopped, generation: state.generation });
    }
    case "matrix": {
      const body = matrix(q);
      if (body === null) throw new ApiErr(404, "no such DC", "dc");
      return send(res, 200, body);
    }
    case "series": {
      const s = series(q);
      if (s === null) throw new ApiErr(404, "unknown scope", "src");
      return send(res, 200, s);
    }
    case "alerts":
      if (NO_ANALYZER) break;
      return send(res, 200, alerts());
    case "alert-rules":
      if (NO_ANALYZER) break;
      if (b === undefined && m === "GET") return send(res, 200, { items: [...alertRules.values()] });
      if (b === undefined && m === "POST") {
        checkName(body?.name, "name");
        alertRules.set(body.name, body);
        return send(res, 201, body);
      }
      if (b !== undefined && m === "PUT") {
        alertRules.set(b, { ...body, name: b });
        return send(res, 200, alertRules.get(b));
      }
      if (b !== undefined && m === "DELETE") {
        alertRules.delete(b);
        return send(res, 204, "");
      }
      break;
  }
  throw new ApiErr(404, `no route ${m} ${url.pathname}`);
}

function statusJson() {
  const all = [...servers.values()];
  return {
    stopped: state.stopped,
    stopped_dcs: [...dcs.values()].filter((d) => d.stopped).map((d) => d.name),
    servers: all.length,
    alive: all.filter(alive).length,
    generation: state.generation,
  };
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json" };
function serveStatic(res, pathname) {
  let file = path.join(DIST, path.normalize(pathname).replace(/^(\.\.[/\\])+/, ""));
  if (!file.startsWith(DIST) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(DIST, "index.html");
  if (!fs.existsSync(file)) return send(res, 404, "web/dist not built: run npm run build", "text/plain");
  res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://localhost");
  try {
    if (url.pathname.startsWith("/api/v1/")) return await handleApi(req, res, url);
    if (url.pathname === "/healthz") return send(res, 200, "ok\n", "text/plain");
    return serveStatic(res, url.pathname);
  } catch (e) {
    const status = e instanceof ApiErr ? e.status : 500;
    const out = { error: e.message };
    if (e instanceof ApiErr && e.field !== "") out.field = e.field;
    return send(res, status, out);
  }
});
server.listen(PORT, "127.0.0.1", () => {
  console.log(`mock pingmesh server on http://127.0.0.1:${server.address().port}/ (dist: ${DIST})`);
});
