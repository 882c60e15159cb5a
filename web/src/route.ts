/**
 * URL state: every view is a hash route, so it can be shared and reloaded.
 *
 *   #/dc?metric=p99&protocol=tcp&range=1h            level 1: DC × DC
 *   #/dc/dc1?…                                         level 2: rack × rack inside dc1
 *   #/dc/dc1/rack/r1/r2?…                              level 3: servers of r1 × servers of r2
 *   #/dc/dc1/servers?sort=rack&…                       every server of dc1, grouped by rack
 *   #/history?scope=pair&src=a&dst=b&…                 history of a pair, rack pair, DC pair, server
 *   #/alerts  #/agents  #/config/dcs[/dc1]  #/config/racks?dc=  #/config/servers  #/config/rules
 *   #/config/alert-rules
 *
 * parseHash and formatHash are pure and inverse of each other on canonical routes.
 */

import type { Metric } from "./scale";

/** One protocol at a time: the collector keeps them apart (an ICMP and a TCP percentile do not mix). */
export type Protocol = "tcp" | "udp" | "icmp" | "http";
export const PROTOCOLS: readonly Protocol[] = ["tcp", "udp", "icmp", "http"];

export type Range = "live" | "1h" | "24h" | "7d" | "custom";
export const RANGES: readonly Range[] = ["live", "1h", "24h", "7d", "custom"];

export type Sort = "name" | "rack" | "worst";
export const SORTS: readonly Sort[] = ["name", "rack", "worst"];

export type HistoryScope = "pair" | "rack_pair" | "dc_pair" | "server";
const SCOPES: readonly HistoryScope[] = ["pair", "rack_pair", "dc_pair", "server"];

export type ConfigSection = "dcs" | "racks" | "servers" | "rules" | "alert-rules";
const SECTIONS: readonly ConfigSection[] = ["dcs", "racks", "servers", "rules", "alert-rules"];

export type View =
  | { kind: "dcs" }
  | { kind: "racks"; dc: string }
  | { kind: "servers"; dc: string; srcRack: string; dstRack: string }
  | { kind: "dcServers"; dc: string }
  | { kind: "history"; scope: HistoryScope; src: string; dst: string; dc: string }
  | { kind: "alerts" }
  | { kind: "agents"; dc: string }
  | { kind: "config"; section: ConfigSection; name: string; dc: string };

/** Query state shared by the data views. */
export interface Query {
  metric: Metric;
  protocol: Protocol;
  range: Range;
  /** Unix seconds, only for range=custom. */
  from: number;
  to: number;
  sort: Sort;
  /** A server to highlight (search result). */
  hl: string;
}

export interface Route {
  view: View;
  q: Query;
}

export const DEFAULT_QUERY: Query = {
  metric: "p99",
  protocol: "tcp",
  range: "1h",
  from: 0,
  to: 0,
  sort: "name",
  hl: "",
};

const METRIC_SET: ReadonlySet<string> = new Set([
  "p50", "p90", "p99", "p999", "p9999", "mean", "max", "loss", "probes",
]);

function pick<T extends string>(value: string | null, allowed: readonly T[], fallback: T): T {
  return value !== null && (allowed as readonly string[]).includes(value) ? (value as T) : fallback;
}

function int(value: string | null): number {
  const n = value === null ? NaN : Number(value);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0;
}

export function parseQuery(params: URLSearchParams): Query {
  const metric = params.get("metric");
  const q: Query = {
    metric: metric !== null && METRIC_SET.has(metric) ? (metric as Metric) : DEFAULT_QUERY.metric,
    protocol: pick(params.get("protocol"), PROTOCOLS, DEFAULT_QUERY.protocol),
    range: pick(params.get("range"), RANGES, DEFAULT_QUERY.range),
    from: int(params.get("from")),
    to: int(params.get("to")),
    sort: pick(params.get("sort"), SORTS, DEFAULT_QUERY.sort),
    hl: params.get("hl") ?? "",
  };
  if (q.range !== "custom" || q.to <= q.from) {
    if (q.range === "custom") q.range = DEFAULT_QUERY.range;
    q.from = 0;
    q.to = 0;
  }
  return q;
}

/** Only non-default values are written, so URLs stay short. */
export function serializeQuery(q: Query): URLSearchParams {
  const p = new URLSearchParams();
  if (q.metric !== DEFAULT_QUERY.metric) p.set("metric", q.metric);
  if (q.protocol !== DEFAULT_QUERY.protocol) p.set("protocol", q.protocol);
  if (q.range !== DEFAULT_QUERY.range) p.set("range", q.range);
  if (q.range === "custom") {
    p.set("from", String(q.from));
    p.set("to", String(q.to));
  }
  if (q.sort !== DEFAULT_QUERY.sort) p.set("sort", q.sort);
  if (q.hl !== "") p.set("hl", q.hl);
  return p;
}

function seg(s: string): string {
  return encodeURIComponent(s);
}

function unseg(s: string | undefined): string {
  if (s === undefined) return "";
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parseHash(hash: string): Route {
  const raw = hash.startsWith("#") ? hash.slice(1) : hash;
  const qi = raw.indexOf("?");
  const path = qi >= 0 ? raw.slice(0, qi) : raw;
  const params = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : "");
  const q = parseQuery(params);
  const parts = path.split("/").filter((s) => s !== "").map(unseg);
  const view = parseView(parts, params);
  return { view, q };
}

function parseView(parts: string[], params: URLSearchParams): View {
  const [head, a, b, c, d] = parts;
  switch (head) {
    case "dc":
      if (a === undefined || a === "") return { kind: "dcs" };
      if (b === "rack" && c !== undefined && c !== "") {
        return { kind: "servers", dc: a, srcRack: c, dstRack: d !== undefined && d !== "" ? d : c };
      }
      if (b === "servers") return { kind: "dcServers", dc: a };
      return { kind: "racks", dc: a };
    case "history": {
      const src = params.get("src") ?? "";
      if (src === "") return { kind: "dcs" };
      const scope = pick(params.get("scope"), SCOPES, "pair");
      const dst = scope === "server" ? "" : params.get("dst") ?? src;
      return { kind: "history", scope, src, dst, dc: params.get("dc") ?? "" };
    }
    case "alerts":
      return { kind: "alerts" };
    case "agents":
      return { kind: "agents", dc: params.get("dc") ?? "" };
    case "config":
      return {
        kind: "config",
        section: pick(a ?? null, SECTIONS, "dcs"),
        name: b ?? "",
        dc: params.get("dc") ?? "",
      };
    default:
      return { kind: "dcs" };
  }
}

/** Views whose URL carries the data query (metric, protocol, range, sort). */
export function hasDataQuery(v: View): boolean {
  return v.kind === "dcs" || v.kind === "racks" || v.kind === "servers" ||
    v.kind === "dcServers" || v.kind === "history";
}

export function formatHash(route: Route): string {
  const { view } = route;
  const p = hasDataQuery(view) ? serializeQuery(route.q) : new URLSearchParams();
  let path: string;
  switch (view.kind) {
    case "dcs":
      path = "/dc";
      break;
    case "racks":
      path = `/dc/${seg(view.dc)}`;
      break;
    case "servers":
      path = `/dc/${seg(view.dc)}/rack/${seg(view.srcRack)}/${seg(view.dstRack)}`;
      break;
    case "dcServers":
      path = `/dc/${seg(view.dc)}/servers`;
      break;
    case "history": {
      path = "/history";
      const h = new URLSearchParams({ scope: view.scope, src: view.src });
      if (view.scope !== "server") h.set("dst", view.dst);
      if (view.dc !== "") h.set("dc", view.dc);
      p.forEach((v, k) => h.set(k, v));
      return `#${path}?${h.toString()}`;
    }
    case "alerts":
      path = "/alerts";
      break;
    case "agents":
      path = "/agents";
      if (view.dc !== "") p.set("dc", view.dc);
      break;
    case "config":
      path = `/config/${view.section}${view.name !== "" ? `/${seg(view.name)}` : ""}`;
      if (view.dc !== "") p.set("dc", view.dc);
      break;
  }
  const qs = p.toString();
  return `#${path}${qs !== "" ? `?${qs}` : ""}`;
}

/** Unix-second window of a query at `nowS`. Live is the last 5 minutes. */
export function windowOf(q: Query, nowS: number): { from: number; to: number } {
  switch (q.range) {
    case "live":
      return { from: nowS - 300, to: nowS };
    case "1h":
      return { from: nowS - 3600, to: nowS };
    case "24h":
      return { from: nowS - 86400, to: nowS };
    case "7d":
      return { from: nowS - 7 * 86400, to: nowS };
    case "custom":
      return { from: q.from, to: q.to };
  }
}

export function href(view: View, q: Query): string {
  return formatHash({ view, q });
}
