/**
 * Every call the UI makes to the pingmesh API (same origin, JSON). Shapes of the controller,
 * collector and analyzer live here and only here.
 */

import type { Metric } from "./scale";
import type { Unit } from "./format";

// ---- shapes -------------------------------------------------------------------------------

export interface List<T> {
  items: T[];
  total: number;
  offset: number;
  limit: number;
}

export interface Status {
  stopped: boolean;
  stopped_dcs: string[];
  servers: number;
  alive: number;
  generation: number;
}

export type ProbeProtocol = "tcp" | "udp" | "icmp" | "http";

export interface Probe {
  protocol: ProbeProtocol;
  port: number;
  dscp?: number;
}

export interface Dc {
  name: string;
  mode: "rack" | "switch";
  probes: Probe[];
  interval_ms: number;
  payload_bytes: number;
  dscp: number;
  rack_ratio: number;
  server_ratio: number;
  inter_dc_servers: number;
  max_peers: number;
  ipv4: boolean;
  ipv6: boolean;
  stopped: boolean;
  description: string;
}

export interface Rack {
  dc: string;
  name: string;
  cidrs: string[];
  description: string;
}

export interface Server {
  name: string;
  dc: string;
  rack: string;
  addresses: string[];
  hostname: string;
  last_seen_ms: number;
  agent_version: string;
  alive?: boolean;
}

export interface Rule {
  name: string;
  level: "intra-rack" | "intra-dc" | "inter-dc";
  src_dc: string;
  dst_dc: string;
  symmetric: boolean;
  action: "add" | "replace" | "disable";
  probes: Probe[];
  interval_ms?: number;
  payload_bytes?: number;
}

export interface PinglistSummary {
  server: string;
  dc: string;
  rack: string;
  entries: number;
  chosen: boolean;
  alive: boolean;
  stopped: boolean;
  version: string | number;
}

export interface Cell {
  value: number | null;
  samples: number;
  missing: boolean;
}

export interface Matrix {
  rows: string[];
  cols: string[];
  cells: Cell[][];
  metric: Metric;
  unit: Unit;
  from: number;
  to: number;
}

export interface SeriesPoint {
  t: number;
  value: number | null;
  samples: number;
}

export interface Series {
  points: SeriesPoint[];
  unit: Unit;
}

/**
 * A localized fault (GET /api/v1/verdicts). `component` is the canonical id alerts refer to:
 * "server:<name>", "rack:<dc>/<rack>", "spine_layer:<dc>", "spine:<dc>/<spine>", "dc:<dc>",
 * "inter_dc:<a>~<b>".
 */
export interface Verdict {
  kind: string;
  component_type: string;
  component: string;
  dc: string;
  peer_dc?: string;
  rack?: string;
  server?: string;
  confidence: number;
  summary: string;
  evidence: Record<string, unknown>;
  first_ms: number;
  last_ms: number;
  active: boolean;
}

/** One alert (GET /api/v1/alerts): a rule, or a localized fault, for one instance. */
export interface Alert {
  id: number;
  rule: string;
  fingerprint: string;
  /** The rule's scope (global, dc, dc_pair, rack, rack_pair, server) or the component type. */
  scope: string;
  state: "pending" | "firing" | "resolved";
  /** alertname, severity, rule, and the instance's labels (dc, src_dc, rack, server, ...). */
  labels: Record<string, string>;
  /** summary, description */
  annotations: Record<string, string>;
  active_since_ms: number;
  fired_ms: number | null;
  resolved_ms: number | null;
  updated_ms: number;
  value: number | null;
  threshold: number;
  samples: number;
  /** Components of the verdicts that explain the alert (see Verdict.component). */
  verdicts: string[];
}

/** An alert rule as the analyzer stores it (src/analyze/rules.hpp). */
export interface AlertRule {
  name: string;
  description: string;
  scope: "global" | "dc" | "dc_pair" | "rack" | "rack_pair" | "server";
  metric: "p50" | "p99" | "p999" | "loss" | "failure_rate" | "no_data";
  /** milliseconds for p50/p99/p999, a ratio for loss/failure_rate; unused for no_data */
  threshold: number;
  protocol: ProbeProtocol;
  window_s: number;
  for_s: number;
  severity: string;
  labels: Record<string, string>;
  match: Record<string, string>;
  min_samples: number;
  min_events: number;
  enabled: boolean;
}

// ---- errors and auth ------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
  /**
   * The endpoint is not built on this server (yet): a 404 that names no field (a missing route,
   * not a missing object such as {"error": "no data for dc 'x'", "field": "dc"}), 405 or 501.
   */
  get notAvailable(): boolean {
    return (this.status === 404 && this.field === "") || this.status === 405 || this.status === 501;
  }
}

/** Asks the user for the admin token; `again` after the server refused the last one. */
export type TokenProvider = (again: boolean) => Promise<string | null>;

let tokenProvider: TokenProvider = async () => null;

export function setTokenProvider(p: TokenProvider): void {
  tokenProvider = p;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let field = "";
  try {
    const j = (await res.json()) as { error?: unknown; field?: unknown };
    if (typeof j.error === "string") message = j.error;
    if (typeof j.field === "string") field = j.field;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, message, field);
}

async function get<T>(path: string, params?: Record<string, string | number | undefined>): Promise<T> {
  const res = await fetch(withParams(path, params), { headers: { Accept: "application/json" } });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

function withParams(path: string, params?: Record<string, string | number | undefined>): string {
  if (params === undefined) return path;
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "") p.set(k, String(v));
  }
  const qs = p.toString();
  return qs === "" ? path : `${path}?${qs}`;
}

/** A write call with the admin token; asks again once when the server refuses it. */
async function write<T>(method: string, path: string, body?: unknown): Promise<T | null> {
  let token = await tokenProvider(false);
  if (token === null) throw new ApiError(0, "cancelled: no admin token given", "");
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (token !== "") headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if ((res.status === 401 || res.status === 403) && attempt === 0) {
      token = await tokenProvider(true);
      if (token === null) throw await errorOf(res);
      continue;
    }
    if (!res.ok) throw await errorOf(res);
    if (res.status === 204) return null;
    const text = await res.text();
    return text === "" ? null : (JSON.parse(text) as T);
  }
}

const V1 = "/api/v1";
const enc = encodeURIComponent;

// ---- controller -----------------------------------------------------------------------------

export const api = {
  status: () => get<Status>(`${V1}/status`),
  stop: (dc?: string) => write<Status>("POST", `${V1}/stop`, dc !== undefined ? { dc } : undefined),
  resume: (dc?: string) =>
    write<Status>("POST", `${V1}/resume`, dc !== undefined ? { dc } : undefined),

  dcs: () => get<List<Dc>>(`${V1}/dcs`, { limit: 10000 }),
  dc: (name: string) => get<Dc>(`${V1}/dcs/${enc(name)}`),
  createDc: (dc: Dc) => write<Dc>("POST", `${V1}/dcs`, dc),
  putDc: (name: string, dc: Dc) => write<Dc>("PUT", `${V1}/dcs/${enc(name)}`, dc),
  patchDc: (name: string, patch: Partial<Dc>) => write<Dc>("PATCH", `${V1}/dcs/${enc(name)}`, patch),
  deleteDc: (name: string) => write<null>("DELETE", `${V1}/dcs/${enc(name)}`),

  racks: (dc: string) => get<List<Rack>>(`${V1}/dcs/${enc(dc)}/racks`, { limit: 10000 }),
  createRack: (rack: Rack) => write<Rack>("POST", `${V1}/dcs/${enc(rack.dc)}/racks`, rack),
  putRack: (dc: string, name: string, rack: Rack) =>
    write<Rack>("PUT", `${V1}/dcs/${enc(dc)}/racks/${enc(name)}`, rack),
  deleteRack: (dc: string, name: string) =>
    write<null>("DELETE", `${V1}/dcs/${enc(dc)}/racks/${enc(name)}`),

  servers: (p: { dc?: string; rack?: string; offset?: number; limit?: number }) =>
    get<List<Server>>(`${V1}/servers`, p),
  server: (name: string) => get<Server>(`${V1}/servers/${enc(name)}`),
  createServer: (s: Server) => write<Server>("POST", `${V1}/servers`, s),
  putServer: (name: string, s: Server) => write<Server>("PUT", `${V1}/servers/${enc(name)}`, s),
  deleteServer: (name: string) => write<null>("DELETE", `${V1}/servers/${enc(name)}`),

  rules: () => get<List<Rule>>(`${V1}/rules`, { limit: 10000 }),
  createRule: (r: Rule) => write<Rule>("POST", `${V1}/rules`, r),
  putRule: (name: string, r: Rule) => write<Rule>("PUT", `${V1}/rules/${enc(name)}`, r),
  deleteRule: (name: string) => write<null>("DELETE", `${V1}/rules/${enc(name)}`),

  pinglists: (p: { dc?: string; offset?: number; limit?: number }) =>
    get<List<PinglistSummary>>(`${V1}/pinglists`, p),

  // ---- collector ----------------------------------------------------------------------------

  matrix: (p: {
    level: "dc" | "rack" | "server";
    dc?: string;
    src_rack?: string;
    dst_rack?: string;
    metric: Metric;
    protocol?: string;
    from: number;
    to: number;
  }) => get<Matrix>(`${V1}/matrix`, p),

  series: (p: {
    scope: "pair" | "rack_pair" | "dc_pair" | "server";
    src: string;
    dst?: string;
    dc?: string;
    metric: Metric;
    protocol?: string;
    from: number;
    to: number;
    step: number;
  }) => get<Series>(`${V1}/series`, p),

  // ---- analyzer -----------------------------------------------------------------------------

  alerts: (p?: { state?: "pending" | "firing" | "resolved" | "active"; limit?: number }) =>
    get<{ alerts: Alert[] }>(`${V1}/alerts`, p),
  verdicts: (p?: { active?: boolean }) =>
    get<{ verdicts: Verdict[] }>(`${V1}/verdicts`, p?.active ? { active: "true" } : undefined),
  alertRules: () => get<{ rules: AlertRule[] }>(`${V1}/alert-rules`),
  createAlertRule: (r: AlertRule) => write<AlertRule>("POST", `${V1}/alert-rules`, r),
  putAlertRule: (name: string, r: AlertRule) =>
    write<AlertRule>("PUT", `${V1}/alert-rules/${enc(name)}`, r),
  deleteAlertRule: (name: string) => write<null>("DELETE", `${V1}/alert-rules/${enc(name)}`),
};

/** Every item of a paged list (for search and agents), at most `cap`. */
export async function allServers(dc: string | undefined, cap = 200000): Promise<Server[]> {
  const out: Server[] = [];
  const limit = 1000;
  for (let offset = 0; offset < cap; offset += limit) {
    const page = await api.servers({ dc, offset, limit });
    out.push(...page.items);
    if (page.items.length === 0 || out.length >= page.total) break;
  }
  return out;
}
