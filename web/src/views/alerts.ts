/** Firing and recent alerts, with the localization verdict and its evidence. */

import { api, ApiError, type Alert } from "../api";
import type { Ctx } from "../app";
import { clear, h, notice } from "../dom";
import { formatTime } from "../format";
import { href, type View } from "../route";

/** The view that shows an alert's scope best: server pair, rack pair, DC, or DC pair. */
export function viewOfScope(scope: Record<string, string>): View {
  const dc = scope.dc ?? scope.src_dc ?? "";
  if (scope.src !== undefined && scope.dst !== undefined) {
    return { kind: "history", scope: "pair", src: scope.src, dst: scope.dst, dc };
  }
  if (scope.server !== undefined) return { kind: "history", scope: "server", src: scope.server, dst: "", dc };
  if (dc !== "" && (scope.src_rack !== undefined || scope.rack !== undefined)) {
    const src = scope.src_rack ?? scope.rack ?? "";
    return { kind: "servers", dc, srcRack: src, dstRack: scope.dst_rack ?? src };
  }
  if (scope.src_dc !== undefined && scope.dst_dc !== undefined && scope.src_dc !== scope.dst_dc) {
    return { kind: "history", scope: "dc_pair", src: scope.src_dc, dst: scope.dst_dc, dc: "" };
  }
  if (dc !== "") return { kind: "racks", dc };
  return { kind: "dcs" };
}

const ORDER = { firing: 0, pending: 1, resolved: 2 } as const;

function evidenceText(e: unknown): string {
  if (typeof e === "string") return e;
  return JSON.stringify(e);
}

function alertCard(ctx: Ctx, a: Alert): HTMLElement {
  const metric = a.summary.toLowerCase().includes("loss") ? "loss" : "p99";
  const target = href(viewOfScope(a.scope ?? {}), { ...ctx.route.q, metric, hl: "" });
  const scope = Object.entries(a.scope ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return h(
    "article",
    { class: `alert alert-${a.state}`, "data-testid": "alert" },
    h(
      "header",
      null,
      h("span", { class: `pill pill-${a.state}` }, a.state),
      h("span", { class: "pill" }, a.severity),
      h("b", null, a.rule),
      h("span", { class: "muted" }, scope),
    ),
    h("p", null, a.summary),
    h(
      "p",
      { class: "muted" },
      `since ${formatTime(a.started_at)}`,
      a.resolved_at !== null && a.resolved_at !== undefined ? ` · resolved ${formatTime(a.resolved_at)}` : "",
    ),
    a.verdict
      ? h(
          "div",
          { class: "verdict" },
          h(
            "div",
            null,
            "Verdict: ",
            h("b", null, a.verdict.component),
            ` — ${a.verdict.kind} (confidence ${Math.round(a.verdict.confidence * 100)} %)`,
          ),
          a.verdict.evidence.length > 0
            ? h("ul", null, a.verdict.evidence.map((e) => h("li", null, evidenceText(e))))
            : null,
        )
      : null,
    h("a", { class: "btn small", href: target }, "show in heatmap"),
  );
}

export function alertsView(ctx: Ctx): () => void {
  ctx.crumbs([["Alerts", null]]);
  const list = h("div", { class: "alerts" });
  clear(ctx.root, h("div", { class: "view-head" }, h("h1", null, "Alerts")), list);
  let alive = true;
  const load = async () => {
    try {
      const res = await api.alerts();
      if (!alive) return;
      const items = [...res.items].sort(
        (a, b) => (ORDER[a.state] ?? 3) - (ORDER[b.state] ?? 3) || b.started_at - a.started_at,
      );
      const firing = items.filter((a) => a.state !== "resolved");
      const recent = items.filter((a) => a.state === "resolved");
      clear(
        list,
        h("h2", null, `Firing and pending (${firing.length})`),
        firing.length === 0 ? notice("info", "No alert is firing.") : firing.map((a) => alertCard(ctx, a)),
        h("h2", null, `Recently resolved (${recent.length})`),
        recent.map((a) => alertCard(ctx, a)),
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
  const timer = setInterval(() => void load(), 10_000);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
