// The shapes of the API responses the UI reads, and a comparison of two sets of them: the mock
// server's (tests/mock-server.mjs) against responses captured from the real `pingmesh server`
// (tests/fixtures/real-api.json, written by the e2e_ui test). See docs/UI.md.

/** Members whose value is a map with free keys (compared by value type only). */
const MAPS = new Set(["labels", "annotations", "match", "evidence"]);

/**
 * The type skeleton of a JSON value: "null" | "string" | "number" | "boolean" | "map" |
 * { array: shape | null } | { object: { key: { shape, optional } } }. Elements of an array are
 * merged: a key some elements lack is optional; a key's types are the union ({ union: [...] }).
 */
export function shapeOf(v, key = "") {
  if (v === null) return "null";
  if (Array.isArray(v)) {
    let el = null;
    for (const x of v) el = el === null ? shapeOf(x) : merge(el, shapeOf(x));
    return { array: el };
  }
  if (typeof v === "object") {
    if (MAPS.has(key)) return "map";
    const object = {};
    for (const [k, x] of Object.entries(v)) object[k] = { shape: shapeOf(x, k), optional: false };
    return { object };
  }
  return typeof v;
}

function variants(s) {
  return typeof s === "object" && s !== null && "union" in s ? s.union : [s];
}

function kind(s) {
  if (typeof s === "string") return s;
  return "array" in s ? "array" : "object";
}

function merge(a, b) {
  const out = [];
  for (const s of [...variants(a), ...variants(b)]) {
    const i = out.findIndex((o) => kind(o) === kind(s));
    if (i < 0) out.push(s);
    else if (kind(s) === "array") {
      const x = out[i].array;
      const y = s.array;
      out[i] = { array: x === null ? y : y === null ? x : merge(x, y) };
    } else if (kind(s) === "object") {
      const object = {};
      const keys = new Set([...Object.keys(out[i].object), ...Object.keys(s.object)]);
      for (const k of keys) {
        const x = out[i].object[k];
        const y = s.object[k];
        object[k] =
          x === undefined ? { ...y, optional: true } : y === undefined ? { ...x, optional: true } : { shape: merge(x.shape, y.shape), optional: x.optional || y.optional };
      }
      out[i] = { object };
    }
  }
  return out.length === 1 ? out[0] : { union: out };
}

/**
 * Differences between the shape of `mock` and of `real` (JSON values), as readable lines. A
 * member one side always has and the other never has is a difference; a
 * member whose non-null types do not meet is one; null on one side only is allowed (nullable).
 * Arrays empty on either side are not compared element-wise (nothing to compare).
 */
export function diffShapes(mock, real, path = "$", names = ["mock", "the real server"]) {
  return diff(shapeOf(mock), shapeOf(real), path, names);
}

function diff(m, r, path, names) {
  const out = [];
  const mv = variants(m).filter((s) => s !== "null");
  const rv = variants(r).filter((s) => s !== "null");
  if (mv.length === 0 || rv.length === 0) return out;
  const mk = new Set(mv.map(kind));
  const rk = new Set(rv.map(kind));
  if (![...mk].some((k) => rk.has(k))) {
    out.push(`${path}: ${names[0]} has ${[...mk].join("|")}, ${names[1]} ${[...rk].join("|")}`);
    return out;
  }
  const mo = mv.find((s) => kind(s) === "object");
  const ro = rv.find((s) => kind(s) === "object");
  if (mo && ro) {
    for (const k of new Set([...Object.keys(mo.object), ...Object.keys(ro.object)])) {
      const x = mo.object[k];
      const y = ro.object[k];
      // A member only some elements of an array have (optional) may be absent on the other side
      // just because of the data (a verdict's peer_dc): a difference only when always there.
      if (x === undefined) {
        if (!y.optional) out.push(`${path}.${k}: missing in the ${names[0]}`);
      } else if (y === undefined) {
        if (!x.optional) out.push(`${path}.${k}: ${names[1]} has no such member`);
      }
      else out.push(...diff(x.shape, y.shape, `${path}.${k}`, names));
    }
  }
  const ma = mv.find((s) => kind(s) === "array");
  const ra = rv.find((s) => kind(s) === "array");
  if (ma && ra && ma.array !== null && ra.array !== null) out.push(...diff(ma.array, ra.array, `${path}[]`, names));
  return out;
}

const enc = encodeURIComponent;

/**
 * GETs every response the UI reads, on any server: `get(path)` resolves to { status, json }.
 * Names (DC, racks, servers, alert rule) are picked from the server's own lists, so the same
 * capture runs on the mock and on the real server. Returns { name: { path, status, json } }.
 */
export async function captureAll(get) {
  const out = {};
  const take = async (name, path) => {
    const r = await get(path);
    out[name] = { path, status: r.status, json: r.json };
    return r.json;
  };
  const now = Math.floor(Date.now() / 1000);
  const range = `from=${now - 3600}&to=${now}`;
  await take("status", "/api/v1/status");
  const dcs = (await take("dcs", "/api/v1/dcs?limit=10000")).items;
  let dc = dcs[0]?.name ?? "";
  let racks = [];
  for (const d of dcs) {
    const rs = (await get(`/api/v1/dcs/${enc(d.name)}/racks?limit=10000`)).json.items;
    if (rs.length >= 2) {
      dc = d.name;
      racks = rs;
      break;
    }
  }
  await take("dc", `/api/v1/dcs/${enc(dc)}`);
  await take("racks", `/api/v1/dcs/${enc(dc)}/racks?limit=10000`);
  const servers = (await take("servers", `/api/v1/servers?dc=${enc(dc)}&offset=0&limit=1000`)).items;
  const a = servers.find((s) => s.rack === racks[0]?.name) ?? servers[0];
  const b = servers.find((s) => s.rack === a?.rack && s.name !== a?.name) ?? servers[1];
  await take("server", `/api/v1/servers/${enc(a?.name ?? "")}`);
  await take("rules", "/api/v1/rules?limit=10000");
  await take("pinglists", `/api/v1/pinglists?dc=${enc(dc)}&offset=0&limit=1000`);
  await take("matrix_dc", `/api/v1/matrix?level=dc&metric=p99&protocol=tcp&${range}`);
  await take("matrix_rack", `/api/v1/matrix?level=rack&dc=${enc(dc)}&metric=loss&protocol=tcp&${range}`);
  await take(
    "matrix_server",
    `/api/v1/matrix?level=server&dc=${enc(dc)}&src_rack=${enc(racks[0]?.name ?? "")}&dst_rack=${enc(racks[1]?.name ?? "")}&metric=p50&protocol=tcp&${range}`,
  );
  await take("matrix_dc_servers", `/api/v1/matrix?level=server&dc=${enc(dc)}&metric=p99&protocol=icmp&${range}`);
  const series = `metric=p99&protocol=tcp&${range}&step=60`;
  await take("series_pair", `/api/v1/series?scope=pair&src=${enc(a?.name ?? "")}&dst=${enc(b?.name ?? "")}&dc=${enc(dc)}&${series}`);
  await take("series_rack_pair", `/api/v1/series?scope=rack_pair&src=${enc(racks[0]?.name ?? "")}&dst=${enc(racks[1]?.name ?? "")}&dc=${enc(dc)}&${series}`);
  await take("series_dc_pair", `/api/v1/series?scope=dc_pair&src=${enc(dc)}&dst=${enc(dc)}&${series}`);
  await take("series_server", `/api/v1/series?scope=server&src=${enc(a?.name ?? "")}&dc=${enc(dc)}&${series}`);
  await take("alerts", "/api/v1/alerts?limit=500");
  await take("verdicts", "/api/v1/verdicts");
  const rules = (await take("alert_rules", "/api/v1/alert-rules")).rules ?? [];
  await take("alert_rule", `/api/v1/alert-rules/${enc(rules[0]?.name ?? "")}`);
  return out;
}

/** Differences between two captures (mock, real), by response name. */
export function diffCaptures(mock, real, names = ["mock", "the real server"]) {
  const out = [];
  for (const name of Object.keys(real)) {
    const m = mock[name];
    const r = real[name];
    if (m === undefined) {
      out.push(`${name}: not captured from the ${names[0]}`);
      continue;
    }
    if (m.status !== r.status) {
      out.push(`${name}: ${names[0]} answers ${m.status}, ${names[1]} ${r.status} (${r.path})`);
      continue;
    }
    out.push(...diffShapes(m.json, r.json, name, names));
  }
  return out;
}
