/** Configuration: DCs, racks/switches, servers, probe rules and alert rules. */

import { allServers, api, ApiError, type AlertRule, type Dc, type Rack, type Rule, type Server } from "../api";
import type { Ctx } from "../app";
import { confirmDialog } from "../dialog";
import { clear, h, notice } from "../dom";
import { formatAge } from "../format";
import { buildForm, type FieldSpec } from "../forms";
import { href, type ConfigSection, type View } from "../route";
import { dcStopButton } from "./matrix";

/** The name used in the URL for "a new object" (not a valid object name, so no clash). */
const NEW = "+";

const SECTION_TITLES: Record<ConfigSection, string> = {
  dcs: "DCs",
  racks: "Racks / switches",
  servers: "Servers",
  rules: "Probe rules",
  "alert-rules": "Alert rules",
};

const DC_FIELDS: FieldSpec[] = [
  { key: "name", label: "name", type: "text", lockOnEdit: true },
  { key: "mode", label: "mode", type: "select", options: ["rack", "switch"], help: "rack: servers registered into racks; switch: placed by address under ToR CIDRs" },
  { key: "probes", label: "probes", type: "probes" },
  { key: "interval_ms", label: "interval (ms)", type: "number", help: "per pair and probe kind; at least 10,000 ms" },
  { key: "payload_bytes", label: "payload (bytes)", type: "number", help: "0 … 65,536" },
  { key: "dscp", label: "DSCP", type: "number" },
  { key: "rack_ratio", label: "rack ratio", type: "number", step: 0.01, help: "fraction (0, 1] of racks/switches that take part" },
  { key: "server_ratio", label: "server ratio", type: "number", step: 0.01, help: "fraction (0, 1] of servers under each" },
  { key: "inter_dc_servers", label: "inter-DC servers", type: "number", help: "servers of this DC that probe other DCs" },
  { key: "max_peers", label: "max peers", type: "number", help: "cap on targets per server; 0 = none" },
  { key: "ipv4", label: "IPv4", type: "bool" },
  { key: "ipv6", label: "IPv6", type: "bool" },
  { key: "description", label: "description", type: "text" },
];

const RACK_FIELDS: FieldSpec[] = [
  { key: "name", label: "name", type: "text", lockOnEdit: true },
  { key: "cidrs", label: "CIDRs", type: "lines", help: "switch mode: the server subnets under this ToR, one per line" },
  { key: "description", label: "description", type: "text" },
];

const SERVER_FIELDS: FieldSpec[] = [
  { key: "name", label: "name", type: "text", lockOnEdit: true },
  { key: "dc", label: "DC", type: "text" },
  { key: "rack", label: "rack", type: "text" },
  { key: "addresses", label: "addresses", type: "lines", help: "one IPv4 or IPv6 address per line" },
  { key: "hostname", label: "hostname", type: "text" },
];

const RULE_FIELDS: FieldSpec[] = [
  { key: "name", label: "name", type: "text", lockOnEdit: true },
  { key: "level", label: "level", type: "select", options: ["intra-rack", "intra-dc", "inter-dc"] },
  { key: "src_dc", label: "source DC", type: "text", help: "a DC name or * for every DC" },
  { key: "dst_dc", label: "destination DC", type: "text", help: "inter-DC only; * for every DC" },
  { key: "symmetric", label: "symmetric", type: "bool" },
  { key: "action", label: "action", type: "select", options: ["add", "replace", "disable"] },
  { key: "probes", label: "probes", type: "probes", help: "none = the source DC's probes" },
  { key: "interval_ms", label: "interval (ms)", type: "number", optional: true, help: "empty = the DC's" },
  { key: "payload_bytes", label: "payload (bytes)", type: "number", optional: true, help: "empty = the DC's" },
];

const NEW_DC: Dc = {
  name: "",
  mode: "rack",
  probes: [{ protocol: "tcp", port: 9001 }],
  interval_ms: 10000,
  payload_bytes: 0,
  dscp: 0,
  rack_ratio: 1,
  server_ratio: 1,
  inter_dc_servers: 4,
  max_peers: 0,
  ipv4: true,
  ipv6: true,
  stopped: false,
  description: "",
};

const NEW_RULE: Rule = {
  name: "",
  level: "inter-dc",
  src_dc: "*",
  dst_dc: "*",
  symmetric: true,
  action: "add",
  probes: [],
};

function failure(e: unknown, what: string): HTMLElement {
  if (e instanceof ApiError && e.notAvailable) return notice("na", `${what} is not available on this server.`);
  return notice("error", `Could not load ${what}: ${e instanceof Error ? e.message : String(e)}`);
}

export function configView(ctx: Ctx): void {
  const v = ctx.route.view as Extract<View, { kind: "config" }>;
  const tabs = h(
    "nav",
    { class: "tabs" },
    (Object.keys(SECTION_TITLES) as ConfigSection[]).map((s) =>
      h("a", { href: href({ kind: "config", section: s, name: "", dc: s === "racks" || s === "servers" ? v.dc : "" }, ctx.route.q), class: s === v.section ? "active" : "" }, SECTION_TITLES[s]),
    ),
  );
  const body = h("div", { class: "config-body" });
  clear(ctx.root, h("div", { class: "view-head" }, h("h1", null, "Configuration")), tabs, body);
  const list: View = { kind: "config", section: v.section, name: "", dc: v.dc };
  ctx.crumbs(
    v.name === ""
      ? [["Configuration", null], [SECTION_TITLES[v.section], null]]
      : [["Configuration", null], [SECTION_TITLES[v.section], list], [v.name === NEW ? "new" : v.name, null]],
  );
  body.append(notice("info", "loading…"));
  const draw = sections[v.section];
  draw(ctx, v, body).catch((e: unknown) => clear(body, failure(e, SECTION_TITLES[v.section])));
}

type Section = (ctx: Ctx, v: Extract<View, { kind: "config" }>, body: HTMLElement) => Promise<void>;

function cfg(section: ConfigSection, name: string, dc = ""): View {
  return { kind: "config", section, name, dc };
}

function link(ctx: Ctx, label: string, view: View, testid?: string): HTMLElement {
  return h("a", { href: href(view, ctx.route.q), "data-testid": testid ?? null }, label);
}

function deleteButton(what: string, run: () => Promise<unknown>, after: () => void): HTMLElement {
  return h(
    "button",
    {
      type: "button",
      class: "btn danger",
      onclick: async () => {
        if (!(await confirmDialog(`Delete ${what}?`, `This removes ${what} from the configuration; pinglists are regenerated.`, "Delete"))) return;
        await run();
        after();
      },
    },
    "Delete",
  );
}

function table(head: string[], rows: HTMLElement[]): HTMLElement {
  return h("div", { class: "table-wrap" }, h("table", { class: "grid" }, h("thead", null, h("tr", null, head.map((t) => h("th", null, t)))), h("tbody", null, rows)));
}

function probesText(p: { protocol: string; port: number }[]): string {
  return p.map((x) => (x.protocol === "icmp" ? "icmp" : `${x.protocol}:${x.port}`)).join(", ");
}

const dcsSection: Section = async (ctx, v, body) => {
  if (v.name !== "") {
    const isNew = v.name === NEW;
    const dc = isNew ? NEW_DC : await api.dc(v.name);
    const form = buildForm(
      DC_FIELDS,
      dc as unknown as Record<string, unknown>,
      !isNew,
      async (values) => {
        const next = { ...dc, ...values } as Dc;
        if (isNew) await api.createDc(next);
        else await api.putDc(dc.name, next);
        ctx.go(cfg("dcs", ""));
      },
      isNew ? [] : [deleteButton(`DC ${dc.name}`, () => api.deleteDc(dc.name), () => ctx.go(cfg("dcs", "")))],
    );
    clear(
      body,
      isNew ? null : h("div", { class: "row" }, dcStopButton(ctx, dc.name), link(ctx, "racks of this DC", cfg("racks", "", dc.name)), link(ctx, "heatmap", { kind: "racks", dc: dc.name })),
      form.el,
    );
    return;
  }
  const dcs = await api.dcs();
  clear(
    body,
    h("div", { class: "row" }, h("a", { class: "btn primary small", href: href(cfg("dcs", NEW), ctx.route.q) }, "+ new DC")),
    table(
      ["DC", "mode", "probes", "interval", "rack ratio", "server ratio", "inter-DC", "state", ""],
      dcs.items.map((d) =>
        h(
          "tr",
          null,
          h("td", null, link(ctx, d.name, cfg("dcs", d.name), `edit-dc-${d.name}`)),
          h("td", null, d.mode),
          h("td", null, probesText(d.probes)),
          h("td", { class: "num" }, `${d.interval_ms / 1000} s`),
          h("td", { class: "num" }, String(d.rack_ratio)),
          h("td", { class: "num" }, String(d.server_ratio)),
          h("td", { class: "num" }, String(d.inter_dc_servers)),
          h("td", null, d.stopped ? h("span", { class: "bad-text" }, "stopped") : "probing"),
          h("td", null, link(ctx, d.mode === "switch" ? "switches" : "racks", cfg("racks", "", d.name))),
        ),
      ),
    ),
  );
};

async function dcPicker(ctx: Ctx, v: Extract<View, { kind: "config" }>): Promise<{ el: HTMLElement; dc: string }> {
  const dcs = await api.dcs();
  const dc = v.dc !== "" ? v.dc : dcs.items[0]?.name ?? "";
  const sel = h(
    "select",
    { "aria-label": "DC", onchange: () => ctx.go(cfg(v.section, "", sel.value)) },
    dcs.items.map((d) => h("option", { value: d.name, selected: d.name === dc }, d.name)),
  );
  return { el: h("label", { class: "ctl" }, h("span", null, "DC"), sel), dc };
}

const racksSection: Section = async (ctx, v, body) => {
  const { el: picker, dc } = await dcPicker(ctx, v);
  if (dc === "") {
    clear(body, notice("info", "No DC yet: create a DC first."));
    return;
  }
  if (v.name !== "") {
    const isNew = v.name === NEW;
    const racks = await api.racks(dc);
    const rack: Rack = isNew ? { dc, name: "", cidrs: [], description: "" } : racks.items.find((r) => r.name === v.name) ?? { dc, name: v.name, cidrs: [], description: "" };
    const form = buildForm(RACK_FIELDS, rack as unknown as Record<string, unknown>, !isNew, async (values) => {
      const next = { ...rack, ...values, dc } as Rack;
      if (isNew) await api.createRack(next);
      else await api.putRack(dc, rack.name, next);
      ctx.go(cfg("racks", "", dc));
    }, isNew ? [] : [deleteButton(`rack ${rack.name}`, () => api.deleteRack(dc, rack.name), () => ctx.go(cfg("racks", "", dc)))]);
    clear(body, h("p", null, `DC ${dc}`), form.el);
    return;
  }
  const racks = await api.racks(dc);
  clear(
    body,
    h("div", { class: "toolbar" }, picker, h("a", { class: "btn primary small", href: href(cfg("racks", NEW, dc), ctx.route.q) }, "+ new rack/switch")),
    table(
      ["rack / switch", "CIDRs", "description", ""],
      racks.items.map((r) =>
        h(
          "tr",
          null,
          h("td", null, link(ctx, r.name, cfg("racks", r.name, dc))),
          h("td", { class: "mono" }, r.cidrs.join(", ")),
          h("td", null, r.description),
          h("td", null, link(ctx, "servers", cfg("servers", "", dc)), " · ", link(ctx, "heatmap", { kind: "servers", dc, srcRack: r.name, dstRack: r.name })),
        ),
      ),
    ),
  );
};

const serversSection: Section = async (ctx, v, body) => {
  const { el: picker, dc } = await dcPicker(ctx, v);
  if (v.name !== "") {
    const isNew = v.name === NEW;
    const server: Server = isNew
      ? { name: "", dc, rack: "", addresses: [], hostname: "", last_seen_ms: 0, agent_version: "" }
      : await api.server(v.name);
    const form = buildForm(SERVER_FIELDS, server as unknown as Record<string, unknown>, !isNew, async (values) => {
      const next = { ...values } as unknown as Server;
      if (isNew) await api.createServer(next);
      else await api.putServer(server.name, next);
      ctx.go(cfg("servers", "", next.dc));
    }, isNew ? [] : [deleteButton(`server ${server.name}`, () => api.deleteServer(server.name), () => ctx.go(cfg("servers", "", dc)))]);
    clear(
      body,
      isNew ? null : h("p", { class: "muted" }, `agent ${server.agent_version || "not seen"} · last heartbeat ${formatAge(server.last_seen_ms, Date.now())}`),
      form.el,
    );
    return;
  }
  const servers = dc === "" ? [] : await allServers(dc, 5000);
  clear(
    body,
    h("div", { class: "toolbar" }, picker, h("a", { class: "btn primary small", href: href(cfg("servers", NEW, dc), ctx.route.q) }, "+ new server")),
    table(
      ["server", "rack", "addresses", "hostname"],
      servers.map((s) =>
        h(
          "tr",
          null,
          h("td", null, link(ctx, s.name, cfg("servers", s.name, dc))),
          h("td", null, s.rack),
          h("td", { class: "mono" }, s.addresses.join(", ")),
          h("td", null, s.hostname),
        ),
      ),
    ),
  );
};

const rulesSection: Section = async (ctx, v, body) => {
  const rules = await api.rules();
  if (v.name !== "") {
    const isNew = v.name === NEW;
    const rule = isNew ? NEW_RULE : rules.items.find((r) => r.name === v.name);
    if (rule === undefined) {
      clear(body, notice("error", `No rule named ${v.name}.`));
      return;
    }
    const form = buildForm(RULE_FIELDS, rule as unknown as Record<string, unknown>, !isNew, async (values) => {
      const next = { ...values } as unknown as Rule;
      if (isNew) await api.createRule(next);
      else await api.putRule(rule.name, next);
      ctx.go(cfg("rules", ""));
    }, isNew ? [] : [deleteButton(`rule ${rule.name}`, () => api.deleteRule(rule.name), () => ctx.go(cfg("rules", "")))]);
    clear(body, form.el);
    return;
  }
  clear(
    body,
    h("div", { class: "row" }, h("a", { class: "btn primary small", href: href(cfg("rules", NEW), ctx.route.q) }, "+ new rule")),
    table(
      ["rule", "level", "source DC", "destination DC", "symmetric", "action", "probes", "interval"],
      rules.items.map((r) =>
        h(
          "tr",
          null,
          h("td", null, link(ctx, r.name, cfg("rules", r.name))),
          h("td", null, r.level),
          h("td", null, r.src_dc),
          h("td", null, r.level === "inter-dc" ? r.dst_dc : "–"),
          h("td", null, r.symmetric ? "yes" : "no"),
          h("td", null, r.action),
          h("td", null, r.probes.length === 0 ? "DC's" : probesText(r.probes)),
          h("td", { class: "num" }, r.interval_ms !== undefined ? `${r.interval_ms / 1000} s` : "DC's"),
        ),
      ),
    ),
  );
};

const ALERT_RULE_FIELDS: FieldSpec[] = [
  { key: "name", label: "name", type: "text", lockOnEdit: true },
  { key: "description", label: "description", type: "text" },
  { key: "scope", label: "scope", type: "select", options: ["global", "dc", "dc_pair", "rack", "rack_pair", "server"], help: "one alert per DC, DC pair, rack, rack pair or server with data (global: one)" },
  { key: "metric", label: "metric", type: "select", options: ["p50", "p99", "p999", "loss", "failure_rate", "no_data"] },
  { key: "threshold", label: "threshold", type: "number", step: "any", help: "milliseconds for p50/p99/p999; a ratio for loss and failure_rate (0.001 = 0.1 %); unused for no_data" },
  { key: "protocol", label: "protocol", type: "select", options: ["tcp", "udp", "icmp", "http"] },
  { key: "window_s", label: "window (s)", type: "number", help: "the last window_s seconds are evaluated" },
  { key: "for_s", label: "for (s)", type: "number", help: "pending this long before firing" },
  { key: "severity", label: "severity", type: "text" },
  { key: "min_samples", label: "min samples", type: "number", help: "fewer probes in the window never fire" },
  { key: "min_events", label: "min events", type: "number", help: "fewer lost, failed or slow probes never fire" },
  { key: "match", label: "match (JSON)", type: "json", help: 'only instances whose labels equal these, e.g. {"dc": "dc1"}' },
  { key: "labels", label: "labels (JSON)", type: "json", help: "added to the alert's labels" },
  { key: "enabled", label: "enabled", type: "bool" },
];

const NEW_ALERT_RULE: AlertRule = {
  name: "",
  description: "",
  scope: "dc",
  metric: "p99",
  threshold: 5,
  protocol: "tcp",
  window_s: 30,
  for_s: 10,
  severity: "warning",
  labels: {},
  match: {},
  min_samples: 100,
  min_events: 3,
  enabled: true,
};

function thresholdText(r: AlertRule): string {
  if (r.metric === "no_data") return "no answer";
  if (r.metric === "loss" || r.metric === "failure_rate") return `> ${+(r.threshold * 100).toPrecision(6)} %`;
  return `> ${r.threshold} ms`;
}

const alertRulesSection: Section = async (ctx, v, body) => {
  const rules = (await api.alertRules()).rules;
  if (v.name !== "") {
    const isNew = v.name === NEW;
    const rule: AlertRule | undefined = isNew ? NEW_ALERT_RULE : rules.find((r) => r.name === v.name);
    if (rule === undefined) {
      clear(body, notice("error", `No alert rule named ${v.name}.`));
      return;
    }
    const form = buildForm(ALERT_RULE_FIELDS, rule as unknown as Record<string, unknown>, !isNew, async (values) => {
      const next = { ...rule, ...values } as AlertRule;
      if (isNew) await api.createAlertRule(next);
      else await api.putAlertRule(rule.name, next);
      ctx.go(cfg("alert-rules", ""));
    }, isNew ? [] : [deleteButton(`alert rule ${rule.name}`, () => api.deleteAlertRule(rule.name), () => ctx.go(cfg("alert-rules", "")))]);
    clear(body, form.el);
    return;
  }
  clear(
    body,
    h("div", { class: "row" }, h("a", { class: "btn primary small", href: href(cfg("alert-rules", NEW), ctx.route.q), "data-testid": "new-alert-rule" }, "+ new alert rule")),
    table(
      ["alert rule", "scope", "metric", "threshold", "protocol", "window", "for", "severity", "match", "state"],
      rules.map((r) =>
        h(
          "tr",
          { "data-alert-rule": r.name },
          h("td", null, link(ctx, r.name, cfg("alert-rules", r.name)), r.description !== "" ? h("div", { class: "muted" }, r.description) : null),
          h("td", null, r.scope),
          h("td", null, r.metric),
          h("td", { class: "num" }, thresholdText(r)),
          h("td", null, r.protocol),
          h("td", { class: "num" }, `${r.window_s} s`),
          h("td", { class: "num" }, `${r.for_s} s`),
          h("td", null, r.severity),
          h("td", { class: "mono" }, Object.entries(r.match).map(([k, x]) => `${k}=${x}`).join(" ")),
          h("td", null, r.enabled ? "enabled" : h("span", { class: "muted" }, "disabled")),
        ),
      ),
    ),
  );
};

const sections: Record<ConfigSection, Section> = {
  dcs: dcsSection,
  racks: racksSection,
  servers: serversSection,
  rules: rulesSection,
  "alert-rules": alertRulesSection,
};
