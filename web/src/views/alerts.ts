/** Firing and recent alerts, with the localization verdict and its evidence. */

import { api, ApiError, type Alert, type Verdict } from "../api";
import type { Ctx } from "../app";
import { clear, h, notice } from "../dom";
import { formatTime } from "../format";
import { href, type View } from "../route";

/**
 * The view that shows an alert best, from its labels (src/analyze: dc, src_dc/dst_dc, rack,
 * src_rack/dst_rack, server; a localized fault also has peer_dc): a server's history, a rack
 * pair's server matrix, a rack's servers, a DC pair's history, a DC's racks, or the DC overview.
 */
export function viewOfLabels(labels: Record<string, string>): View {
  const dc = labels.dc ?? labels.src_dc ?? "";
  if (labels.server !== undefined && labels.server !== "") {
    return { kind: "history", scope: "server", src: labels.server, dst: "", dc };
  }
  if (labels.src_rack !== undefined && labels.dst_rack !== undefined) {
    if (labels.src_dc !== undefined && labels.dst_dc !== undefined && labels.src_dc !== labels.dst_dc) {
      return { kind: "history", scope: "dc_pair", src: labels.src_dc, dst: labels.dst_dc, dc: "" };
    }
    return { kind: "servers", dc, srcRack: labels.src_rack, dstRack: labels.dst_rack };
  }
  if (dc !== "" && labels.rack !== undefined && labels.rack !== "") {
    return { kind: "servers", dc, srcRack: labels.rack, dstRack: labels.rack };
  }
  const peer = labels.peer_dc ?? (labels.src_dc !== undefined ? labels.dst_dc : undefined);
  if (dc !== "" && peer !== undefined && peer !== "" && peer !== dc) {
    return { kind: "history", scope: "dc_pair", src: dc, dst: peer, dc: "" };
  }
  if (dc !== "") return { kind: "racks", dc };
  return { kind: "dcs" };
}

/** The heatmap metric an alert is about (its labels' metric, or the localized fault's kind). */
export function metricOfAlert(a: Pick<Alert, "labels">): "p50" | "p99" | "p999" | "loss" {
  const m = a.labels.metric ?? "";
  if (m === "p50" || m === "p99" || m === "p999") return m;
  const kind = a.labels.kind ?? "";
  if (kind.includes("latency")) return "p99";
  return "loss";
}

const ORDER = { firing: 0, pending: 1, resolved: 2 } as const;

/** Alert-list order: firing, pending, resolved; newest first inside each. */
export function sortAlerts(alerts: readonly Alert[]): Alert[] {
  return [...alerts].sort(
    (a, b) => (ORDER[a.state] ?? 3) - (ORDER[b.state] ?? 3) || b.active_since_ms - a.active_since_ms || b.id - a.id,
  );
}

/** Evidence of a verdict (a JSON object) as "key: value" lines. */
export function evidenceLines(evidence: unknown): string[] {
  if (evidence === null || evidence === undefined) return [];
  if (typeof evidence !== "object") return [String(evidence)];
  if (Array.isArray(evidence)) return evidence.map((e) => (typeof e === "string" ? e : JSON.stringify(e)));
  const text = (v: unknown): string => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      return Object.entries(v as Record<string, unknown>)
        .map(([k, x]) => `${k.replace(/_/g, " ")} ${text(x)}`)
        .join(", ");
    }
    if (Array.isArray(v)) return v.map(text).join("; ");
    return typeof v === "string" ? v : JSON.stringify(v);
  };
  return Object.entries(evidence as Record<string, unknown>).map(([k, v]) => `${k.replace(/_/g, " ")}: ${text(v)}`);
}

/** The verdict records by kind and component ("kind|component"), the newest of each. */
export function verdictIndex(verdicts: readonly Verdict[]): Map<string, Verdict> {
  const out = new Map<string, Verdict>();
  for (const v of verdicts) {
    for (const key of [`${v.kind}|${v.component}`, v.component]) {
      const seen = out.get(key);
      if (seen === undefined || (v.active && !seen.active) || (v.active === seen.active && v.last_ms > seen.last_ms)) out.set(key, v);
    }
  }
  return out;
}

/** The labels shown on an alert card: the instance's, without the ones shown elsewhere. */
const HIDDEN_LABELS = new Set(["alertname", "severity", "rule", "scope", "component", "kind", "component_type"]);

function verdictBox(component: string, v: Verdict | undefined): HTMLElement {
  if (v === undefined) {
    return h("div", { class: "verdict", "data-testid": "verdict" }, "Verdict: ", h("b", null, component), h("span", { class: "muted" }, " (ended)"));
  }
  const evidence = evidenceLines(v.evidence);
  return h(
    "div",
    { class: "verdict", "data-testid": "verdict" },
    h(
      "div",
      null,
      "Verdict: ",
      h("b", null, v.component),
      ` — ${v.kind.replace(/_/g, " ")} (confidence ${Math.round(v.confidence * 100)} %)`,
      v.active ? "" : " · ended",
    ),
    v.summary !== "" ? h("div", null, v.summary) : null,
    evidence.length > 0 ? h("ul", { "data-testid": "evidence" }, evidence.map((e) => h("li", null, e))) : null,
  );
}

function alertCard(ctx: Ctx, a: Alert, verdicts: Map<string, Verdict>): HTMLElement {
  const target = href(viewOfLabels(a.labels), { ...ctx.route.q, metric: metricOfAlert(a), hl: a.labels.server ?? "" });
  const labels = Object.entries(a.labels)
    .filter(([k]) => !HIDDEN_LABELS.has(k))
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  const summary = a.annotations.summary ?? a.annotations.description ?? "";
  const times = [`since ${formatTime(a.active_since_ms / 1000)}`];
  if (a.fired_ms !== null) times.push(`firing since ${formatTime(a.fired_ms / 1000)}`);
  if (a.resolved_ms !== null) times.push(`resolved ${formatTime(a.resolved_ms / 1000)}`);
  return h(
    "article",
    { class: `alert alert-${a.state}`, "data-testid": "alert", "data-rule": a.rule, "data-id": String(a.id) },
    h(
      "header",
      null,
      h("span", { class: `pill pill-${a.state}` }, a.state),
      h("span", { class: "pill" }, a.labels.severity ?? ""),
      h("b", null, a.rule),
      h("span", { class: "pill" }, a.scope),
      h("span", { class: "muted" }, labels),
    ),
    summary !== "" ? h("p", { "data-testid": "alert-summary" }, summary) : null,
    h("p", { class: "muted" }, times.join(" · ")),
    a.verdicts.map((c) => verdictBox(c, verdicts.get(`${a.labels.kind ?? ""}|${c}`) ?? verdicts.get(c))),
    h("a", { class: "btn small", href: target, "data-testid": "alert-link" }, "show in heatmap"),
  );
}

export function alertsView(ctx: Ctx): () => void {
  ctx.crumbs([["Alerts", null]]);
  const list = h("div", { class: "alerts" });
  clear(ctx.root, h("div", { class: "view-head" }, h("h1", null, "Alerts")), list);
  let alive = true;
  const load = async () => {
    try {
      const [res, vres] = await Promise.all([
        api.alerts({ limit: 500 }),
        api.verdicts().catch((e: unknown) => {
          if (e instanceof ApiError && e.notAvailable) return { verdicts: [] as Verdict[] };
          throw e;
        }),
      ]);
      if (!alive) return;
      const verdicts = verdictIndex(vres.verdicts);
      const items = sortAlerts(res.alerts);
      const firing = items.filter((a) => a.state !== "resolved");
      const recent = items.filter((a) => a.state === "resolved");
      clear(
        list,
        h("h2", null, `Firing and pending (${firing.length})`),
        firing.length === 0 ? notice("info", "No alert is firing.") : firing.map((a) => alertCard(ctx, a, verdicts)),
        h("h2", null, `Recently resolved (${recent.length})`),
        recent.map((a) => alertCard(ctx, a, verdicts)),
      );
    } catch (e) {
      if (!alive) return;
      clear(
        list,
        e instanceof ApiError && e.notAvailable
          ? notice("na", "Alerts (/api/v1/alerts) are not available on this server: the analyzer is not running.")
          : notice("error", `Could not load alerts: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
  };
  void load();
  const timer = setInterval(() => void load(), 5_000);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
