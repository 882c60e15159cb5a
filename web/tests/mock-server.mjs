// A stand-in for `pingmesh server` for UI work without a mesh: serves web/dist and the API the UI
// reads, with synthetic, deterministic data (a "red cross" rack, a "white cross" rack, a DC of
// 2,000 servers). Loopback only. Its responses have the real server's shapes: the unit test
// tests/unit/mock-shapes.test.ts compares them with responses captured from the real server
// (tests/fixtures/real-api.json, refreshed by the e2e_ui ctest), so the two cannot drift silently.
//
//   node tests/mock-server.mjs [--port 9080] [--dist dist]
//   MOCK_TOKEN=secret  → write calls need "Authorization: Bearer secret"
//   MOCK_NO_ANALYZER=1 → /api/v1/alerts, verdicts and alert-rules answer 404 (not built)
//
// `mockFetch(method, pathAndQuery, body)` answers without a socket (used by the unit test).

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { realAlertRules } from "./fixtures/real-api.mjs";

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
const BAD_RACKS = new Set(["dc1-r3"]);
const DOWN_RACKS = new Set(["dc3-r2"]);
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
    stopped: false, description: "", devices: [], ...extra,
  });
  const dcIndex = dcs.size;
  for (let r = 1; r <= nRacks; r++) {
    const rack = `${name}-r${r}`;
    racks.set(`${name}/${rack}`, { dc: name, name: rack, cidrs: [`10.${dcIndex}.${r}.0/24`], description: "" });
    for (let s = 1; s <= perRack; s++) {
      const sname = `${rack}-s${s}`;
      const dead = DOWN_RACKS.has(rack);
      servers.set(sname, {
        name: sname, dc: name, rack, addresses: [`10.${dcIndex}.${r * 8 + Math.floor(s / 200)}.${(s % 200) + 10}`], hostname: `${sname}.example.internal`,
        last_seen_ms: dead ? now() - 3600_000 : now() - Math.floor(hash(sname) * 20000),
        agent_version: hash(sname + "v") < 0.1 ? "0.9.0" : "1.0.0",
      });
    }
  }
}
addDc("dc1", 8, 6);
addDc("dc2", 6, 5);
addDc("dc3", 4, 4);
addDc("big", 2, 1000, { description: "two racks of 1,000 servers, for rendering speed" });
for (const [name, level] of [["intra-rack", "intra-rack"], ["intra-dc", "intra-dc"], ["inter-dc", "inter-dc"]]) {
  rules.set(name, { name, level, src_dc: "*", dst_dc: "*", symmetric: true, action: "add", probes: [] });
}
// The real server's default rules, as captured from it.
for (const r of realAlertRules()) alertRules.set(r.name, r);

const alive = (s) => now() - s.last_seen_ms < 90_000;
const keepAlive = () => {
  for (const s of servers.values()) if (!DOWN_RACKS.has(s.rack)) s.last_seen_ms = now() - Math.floor(hash(s.name + now()) * 15000);
};

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
const UNITS = { loss: "ratio", probes: "count" };
const unitOf = (metric) => UNITS[metric] ?? "us";
const METRICS = ["p50", "p90", "p99", "p999", "p9999", "loss", "probes", "mean", "max", "min"];
const PROTOCOLS = ["tcp", "udp", "icmp", "http"];

/** from/to (Unix seconds, snapped out to minutes), metric and protocol as the collector reads them. */
function queryParams(q, spanS) {
  const to = q.has("to") ? Number(q.get("to")) : Math.floor(now() / 1000);
  if (!(to > 0)) throw new ApiErr(400, "'to' must be Unix seconds", "to");
  const from = q.has("from") ? Number(q.get("from")) : to - spanS;
  if (!(from > 0)) throw new ApiErr(400, "'from' must be Unix seconds", "from");
  if (from >= to) throw new ApiErr(400, "'from' must be before 'to'", "from");
  const metric = q.get("metric") ?? "p99";
  if (!METRICS.includes(metric)) throw new ApiErr(400, `unknown metric '${metric}' (p50, p90, p99, p999, p9999, loss, probes, mean, max, min)`, "metric");
  const protocol = q.get("protocol") ?? "tcp";
  if (!PROTOCOLS.includes(protocol)) throw new ApiErr(400, `unknown protocol '${protocol}'`, "protocol");
  return { from: Math.floor(from / 60) * 60, to: Math.ceil(to / 60) * 60, metric, protocol };
}

function matrix(q) {
  const { from, to, metric, protocol } = queryParams(q, 600);
  const level = q.get("level") ?? "dc";
  const head = { level, metric, unit: unitOf(metric), protocol, from, to };
  let rows;
  let cols;
  let cell;
  if (level === "dc") {
    rows = cols = [...dcs.keys()].sort(natural);
    cell = (a, b) => measure(metric, a, b, "", "", `${a}|${b}`, protocol);
  } else if (level === "rack" || level === "server") {
    const dc = q.get("dc") ?? "";
    if (dc === "") throw new ApiErr(400, "'dc' is required at this level", "dc");
    if (!dcs.has(dc)) throw new ApiErr(404, `no data for dc '${dc}'`, "dc");
    head.dc = dc;
    if (level === "rack") {
      rows = cols = racksOf(dc).map((r) => r.name).sort(natural);
      cell = (a, b) => measure(metric, dc, dc, a, b, `${a}|${b}`, protocol);
    } else {
      const srcRack = q.get("src_rack") ?? "";
      if (srcRack === "") {
        // The whole DC, grouped by rack, as the collector answers it (at most 2,000 servers).
        if (q.has("dst_rack")) throw new ApiErr(400, "'dst_rack' needs 'src_rack'", "src_rack");
        rows = racksOf(dc).map((r) => r.name).sort(natural).flatMap((r) => serversOf(dc, r).map((s) => s.name).sort(natural));
        if (rows.length > 2000) throw new ApiErr(400, `dc '${dc}' has ${rows.length} servers; at most 2000 at level=server without 'src_rack': pick a rack pair`, "src_rack");
        cols = rows;
        const rackOf = (n) => servers.get(n)?.rack ?? "";
        cell = (a, b) => (a === b ? { value: null, samples: 0, missing: true } : measure(metric, dc, dc, rackOf(a), rackOf(b), `${a}|${b}`, protocol));
        return matrixBody(metric, head, rows, cols, cell);
      }
      const dstRack = q.get("dst_rack") ?? srcRack;
      if (!racks.has(`${dc}/${srcRack}`)) throw new ApiErr(404, `no data for rack '${srcRack}'`, "src_rack");
      if (!racks.has(`${dc}/${dstRack}`)) throw new ApiErr(404, `no data for rack '${dstRack}'`, "dst_rack");
      Object.assign(head, { src_rack: srcRack, dst_rack: dstRack });
      rows = serversOf(dc, srcRack).map((s) => s.name).sort(natural);
      cols = serversOf(dc, dstRack).map((s) => s.name).sort(natural);
      const rackOf = (n) => servers.get(n)?.rack ?? "";
      cell = (a, b) => (a === b ? { value: null, samples: 0, missing: true } : measure(metric, dc, dc, rackOf(a), rackOf(b), `${a}|${b}`, protocol));
    }
  } else {
    throw new ApiErr(400, "'level' must be dc, rack or server", "level");
  }
  return matrixBody(metric, head, rows, cols, cell);
}

function matrixBody(metric, head, rows, cols, cell) {
  const key = [metric, JSON.stringify(head), rows.length, state.stopped, JSON.stringify([...dcs.values()].map((d) => d.stopped))].join("|");
  let body = matrixCache.get(key);
  if (body === undefined) {
    const cells = rows.map((a) => cols.map((b) => cell(a, b)));
    body = JSON.stringify({ ...head, rows, cols, cells });
    if (matrixCache.size > 64) matrixCache.clear();
    matrixCache.set(key, body);
  }
  return body;
}

function series(q) {
  const { from: from0, to, metric, protocol } = queryParams(q, 3600);
  const scope = q.get("scope") ?? "";
  const src = q.get("src") ?? "";
  let dst = q.get("dst") ?? "";
  if (src === "") throw new ApiErr(400, "'src' is required", "src");
  const span = to - from0;
  let step = span <= 3 * 3600 ? 60 : span <= 2 * 86400 ? 600 : span <= 60 * 86400 ? 3600 : 86400;
  if (q.has("step")) {
    step = Number(q.get("step"));
    if (!Number.isInteger(step) || step < 60 || step % 60 !== 0) throw new ApiErr(400, "'step' must be a multiple of 60 seconds", "step");
  }
  const from = Math.floor(from0 / step) * step;
  const npoints = Math.ceil((to - from) / step);
  if (npoints > 10000) throw new ApiErr(400, "too many points; raise 'step'", "step");
  const noData = (what, field) => new ApiErr(404, `no data for ${what}`, field);
  let srcDc, dstDc, srcRack, dstRack;
  if (scope === "dc_pair" || scope === "dc") {
    if (scope === "dc") dst = src;
    if (!dcs.has(src)) throw noData(`dc '${src}'`, "src");
    if (!dcs.has(dst)) throw noData(`dc '${dst}'`, "dst");
    [srcDc, dstDc, srcRack, dstRack] = [src, dst, "", ""];
  } else if (scope === "rack_pair" || scope === "rack") {
    const dc = q.get("dc") ?? "";
    if (!dcs.has(dc)) throw noData(`dc '${dc}'`, "dc");
    if (scope === "rack") dst = "";
    if (!racks.has(`${dc}/${src}`)) throw noData(`rack '${src}'`, "src");
    if (scope === "rack_pair" && !racks.has(`${dc}/${dst}`)) throw noData(`rack '${dst}'`, "dst");
    [srcDc, dstDc, srcRack, dstRack] = [dc, dc, src, dst === "" ? src : dst];
  } else if (scope === "pair" || scope === "server") {
    const a = servers.get(src);
    if (a === undefined) throw noData(`server '${src}'`, "src");
    const b = scope === "server" ? a : servers.get(dst);
    if (b === undefined) throw noData(`server '${dst}'`, "dst");
    [srcDc, dstDc, srcRack, dstRack] = [a.dc, b.dc, a.rack, b.rack];
  } else {
    throw new ApiErr(400, "'scope' must be pair, rack_pair, dc_pair, dc, server or rack", "scope");
  }
  const out = { scope, src, metric, unit: unitOf(metric), protocol, from, to, step };
  if (dst !== "") out.dst = dst;
  out.points = [];
  for (let i = 0; i < npoints; i++) {
    const t = from + i * step;
    const m = measure(metric, srcDc, dstDc, srcRack, dstRack, `${src}|${dst}|${t}`, protocol);
    // an incident 20-30 % into the window, for the charts to show something
    const incident = t > from + (to - from) * 0.2 && t < from + (to - from) * 0.3;
    if (!m.missing && incident) m.value = metric === "loss" ? m.value + 0.01 : Math.round(m.value * 3);
    out.points.push({ ...m, t });
  }
  return out;
}

function pinglistSummary(s) {
  const dc = dcs.get(s.dc);
  const stopped = state.stopped || dc.stopped;
  const chosen = alive(s) && hash(s.name + "c") < dc.server_ratio + 1e-9 && hash(s.rack + "rc") < dc.rack_ratio + 1e-9;
  const rackPeers = serversOf(s.dc, s.rack).length - 1;
  const racksInDc = racksOf(s.dc).length - 1;
  const entries = stopped || !chosen ? 0 : Math.round(rackPeers * dc.server_ratio) + Math.round(racksInDc * dc.rack_ratio) + 4 * (dcs.size - 1);
  return { server: s.name, dc: s.dc, rack: s.rack, entries, chosen, alive: alive(s), stopped, version: `g${state.generation}` };
}

/** Localized faults: the red-cross rack and the white-cross rack (src/analyze/localize). */
function verdicts() {
  const t = now();
  return [
    {
      kind: "rack_problem", component_type: "rack", component: `rack:dc1/${BAD_RACK}`, dc: "dc1", rack: BAD_RACK,
      confidence: 0.9, summary: `rack ${BAD_RACK} (dc1): probes from and to its servers are slow and lossy (red cross)`,
      evidence: { servers_elevated: 6, servers_known: 6, cross_loss: 0.02, rest_loss: 0.00001 },
      first_ms: t - 900_000, last_ms: t, active: true,
    },
    {
      kind: "rack_down", component_type: "rack", component: "rack:dc3/dc3-r2", dc: "dc3", rack: "dc3-r2",
      confidence: 1, summary: "rack dc3-r2 (dc3) down: 4 of its 4 servers neither report nor answer; 96 probes to them failed (white cross)",
      evidence: { servers_known: 4, servers_silent: 4, failed_probes_to_rack: 96 },
      first_ms: t - 3_600_000, last_ms: t, active: true,
    },
    {
      kind: "server_down", component_type: "server", component: "server:dc2-r5-s3", dc: "dc2", rack: "dc2-r5", server: "dc2-r5-s3",
      confidence: 0.999, summary: "server dc2-r5-s3 down: no batch for 41 s, nothing answered for 40 s, 60 probes to it failed",
      evidence: { batch_age_ms: 41000, answer_age_ms: 40000, as_target: { probes: 60, answered: 0, failures: 60, lost: 0, loss_base: 0, ok: 0, slow: 0 } },
      first_ms: t - 300_000, last_ms: t, active: true,
    },
  ];
}

function alerts() {
  const t = now();
  const alert = (id, rule, scope, state, labels, summary, since, extra = {}) => ({
    id, rule, fingerprint: `${rule}|${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",")}`, scope, state,
    labels: { alertname: rule.replace(/[^A-Za-z0-9]+/g, "_"), severity: "critical", rule, ...labels },
    annotations: { summary, description: `mock alert of rule ${rule}` },
    active_since_ms: t - since, fired_ms: state === "pending" ? null : t - since, resolved_ms: null, updated_ms: t,
    value: 0.02, threshold: 0.001, samples: 2000, verdicts: [], ...extra,
  });
  const items = [
    alert(3, "localization/rack_problem", "rack", "firing", { kind: "rack_problem", component: `rack:dc1/${BAD_RACK}`, component_type: "rack", dc: "dc1", rack: BAD_RACK },
      verdicts()[0].summary, 900_000, { value: 0.9, threshold: 0, verdicts: [`rack:dc1/${BAD_RACK}`] }),
    alert(2, "rack-loss", "rack", "firing", { dc: "dc1", rack: BAD_RACK, scope: "rack", protocol: "tcp", metric: "loss" },
      `rack-loss: loss 2 % (threshold 0.1 %, 2000 samples, rack=dc1/${BAD_RACK})`, 600_000, { verdicts: [`rack:dc1/${BAD_RACK}`] }),
    alert(4, "localization/rack_down", "rack", "firing", { kind: "rack_down", component: "rack:dc3/dc3-r2", component_type: "rack", dc: "dc3", rack: "dc3-r2" },
      verdicts()[1].summary, 3_600_000, { value: 1, threshold: 0, verdicts: ["rack:dc3/dc3-r2"] }),
    alert(5, "localization/server_down", "server", "firing", { kind: "server_down", component: "server:dc2-r5-s3", component_type: "server", dc: "dc2", rack: "dc2-r5", server: "dc2-r5-s3" },
      verdicts()[2].summary, 300_000, { value: 0.999, threshold: 0, verdicts: ["server:dc2-r5-s3"] }),
    alert(1, "dc-pair-loss", "dc_pair", "resolved", { src_dc: "dc2", dst_dc: "dc3", scope: "dc_pair", protocol: "tcp", metric: "loss" },
      "dc-pair-loss: loss 0.3 % (threshold 0.1 %, 5000 samples, dc_pair=dc2>dc3)", 86_400_000, { resolved_ms: t - 80_000_000, updated_ms: t - 80_000_000 }),
  ];
  // A rule added through the API fires at once for the first DC (the mock evaluates nothing).
  const defaults = new Set(realAlertRules().map((r) => r.name));
  let id = 100;
  for (const r of alertRules.values()) {
    if (defaults.has(r.name) || !r.enabled) continue;
    const dc = [...dcs.keys()][0];
    items.unshift(alert(id++, r.name, r.scope, r.for_s > 0 ? "pending" : "firing", { dc, scope: r.scope, protocol: r.protocol, metric: r.metric },
      `${r.name}: ${r.metric} above ${r.threshold} (mock: every added rule fires for ${dc})`, 5_000, { value: r.threshold * 2, threshold: r.threshold }));
  }
  return { alerts: items };
}

/** The analyzer's rule check, in short: the fields the UI's form sends. */
function validateAlertRule(r) {
  if (r === null || typeof r !== "object" || Array.isArray(r)) throw new ApiErr(400, "a rule must be a JSON object");
  const known = ["name", "description", "scope", "metric", "threshold", "protocol", "window_s", "for_s", "severity", "labels", "match", "min_samples", "min_events", "enabled"];
  for (const k of Object.keys(r)) if (!known.includes(k)) throw new ApiErr(400, "unknown field", k);
  if (typeof r.name !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(r.name)) throw new ApiErr(400, "must be 1..64 characters of [A-Za-z0-9._-]", "name");
  if (!["global", "dc", "dc_pair", "rack", "rack_pair", "server"].includes(r.scope)) throw new ApiErr(400, "must be one of global, dc, dc_pair, rack, rack_pair, server", "scope");
  if (!["p50", "p99", "p999", "loss", "failure_rate", "no_data"].includes(r.metric)) throw new ApiErr(400, "must be one of p50, p99, p999, loss, failure_rate, no_data", "metric");
  if (r.metric !== "no_data" && typeof r.threshold !== "number") throw new ApiErr(400, "required", "threshold");
  if ((r.metric === "loss" || r.metric === "failure_rate") && r.threshold >= 1) throw new ApiErr(400, "a ratio must be below 1 (0.001 = 0.1 %)", "threshold");
  if (r.window_s !== undefined && !(Number.isInteger(r.window_s) && r.window_s >= 5 && r.window_s <= 60)) throw new ApiErr(400, "must be in [5, 60]", "window_s");
  const rule = { ...realAlertRules()[0], labels: {}, match: {}, description: "", ...r };
  if (rule.metric === "no_data" && r.threshold === undefined) rule.threshold = 0;
  return rule;
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
          const dc = { ...dcs.values().next().value, stopped: false, description: "", devices: [], ...body };
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
    case "matrix":
      if (m !== "GET") break;
      return send(res, 200, matrix(q));
    case "series":
      if (m !== "GET") break;
      return send(res, 200, series(q));
    case "alerts":
      if (NO_ANALYZER || m !== "GET") break;
      return send(res, 200, alerts());
    case "verdicts":
      if (NO_ANALYZER || m !== "GET") break;
      return send(res, 200, { verdicts: verdicts().filter((v) => q.get("active") !== "true" || v.active) });
    case "alert-rules": {
      if (NO_ANALYZER) break;
      if (b === undefined && m === "GET") return send(res, 200, { rules: [...alertRules.values()] });
      if (b === undefined && m === "POST") {
        const rule = validateAlertRule(body);
        if (alertRules.has(rule.name)) throw new ApiErr(409, `rule exists: ${rule.name}`, "name");
        alertRules.set(rule.name, rule);
        return send(res, 201, rule);
      }
      if (b === undefined) break;
      if (m === "GET") {
        if (!alertRules.has(b)) throw new ApiErr(404, `no such rule: ${b}`, "name");
        return send(res, 200, alertRules.get(b));
      }
      if (m === "PUT") {
        const rule = validateAlertRule({ name: b, ...body });
        if (rule.name !== b) throw new ApiErr(400, "name differs from the path", "name");
        const created = !alertRules.has(b);
        alertRules.set(b, rule);
        return send(res, created ? 201 : 200, rule);
      }
      if (m === "DELETE") {
        if (!alertRules.delete(b)) throw new ApiErr(404, `no such rule: ${b}`, "name");
        return send(res, 204, "");
      }
      break;
    }
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

async function handle(req, res) {
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
}

/** One API call without a socket: resolves to { status, json } (json null when the body is empty). */
export async function mockFetch(method, pathAndQuery, body) {
  const req = Readable.from(body === undefined ? [] : [JSON.stringify(body)]);
  Object.assign(req, { method, url: pathAndQuery, headers: TOKEN !== "" ? { authorization: `Bearer ${TOKEN}` } : {} });
  return new Promise((resolve) => {
    let status = 0;
    const res = {
      writeHead: (s) => {
        status = s;
      },
      end: (data) => resolve({ status, json: data === undefined || data === "" ? null : JSON.parse(data) }),
    };
    void handle(req, res);
  });
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  setInterval(keepAlive, 5000).unref();
  const server = http.createServer((req, res) => void handle(req, res));
  server.listen(PORT, "127.0.0.1", () => {
    console.log(`mock pingmesh server on http://127.0.0.1:${server.address().port}/ (dist: ${DIST})`);
  });
}
