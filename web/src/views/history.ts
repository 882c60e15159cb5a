/** History of a server pair, rack pair, DC pair or one server: P50/P99/P99.9 and loss over time. */

import { api, ApiError, type Series } from "../api";
import type { Ctx } from "../app";
import { lineChart } from "../chart";
import { toolbar } from "../controls";
import { clear, h, notice } from "../dom";
import { formatWindow } from "../format";
import { windowOf, type View } from "../route";
import type { Metric } from "../scale";

const SCOPE_TITLES = {
  pair: "server pair",
  rack_pair: "rack pair",
  dc_pair: "DC pair",
  server: "server",
} as const;

/** About 300 points per chart, in whole minutes (the collector's finest roll-up). */
export function stepFor(from: number, to: number): number {
  return Math.max(60, Math.ceil((to - from) / 300 / 60) * 60);
}

export function historyView(ctx: Ctx): () => void {
  const v = ctx.route.view as Extract<View, { kind: "history" }>;
  const q = ctx.route.q;
  const trail: [string, View | null][] = [["All DCs", { kind: "dcs" }]];
  if (v.dc !== "") trail.push([v.dc, { kind: "racks", dc: v.dc }]);
  if (v.scope === "rack_pair" && v.dc !== "") {
    trail.push([`racks ${v.src} → ${v.dst}`, { kind: "servers", dc: v.dc, srcRack: v.src, dstRack: v.dst }]);
  }
  if (v.scope === "dc_pair" && v.src === v.dst) trail.push([v.src, { kind: "racks", dc: v.src }]);
  trail.push(["history", null]);
  ctx.crumbs(trail);

  const what = v.scope === "server" ? v.src : `${v.src} → ${v.dst}`;
  const info = h("div", { class: "info" });
  const latencyBox = h("div", { class: "chart", "data-testid": "chart-latency" });
  const lossBox = h("div", { class: "chart", "data-testid": "chart-loss" });
  clear(
    ctx.root,
    h("div", { class: "view-head" }, h("h1", null, `History of ${SCOPE_TITLES[v.scope]} ${what}`)),
    toolbar(ctx, { sort: false, metric: false }),
    info,
    latencyBox,
    lossBox,
  );

  const charts: { destroy: () => void }[] = [];
  let alive = true;
  const load = async () => {
    const { from, to } = windowOf(q, Math.floor(Date.now() / 1000));
    const step = stepFor(from, to);
    const one = (metric: Metric) =>
      api.series({
        scope: v.scope,
        src: v.src,
        dst: v.scope === "server" ? undefined : v.dst,
        dc: v.dc === "" ? undefined : v.dc,
        metric,
        protocol: q.protocol,
        from,
        to,
        step,
      });
    try {
      const [p50, p99, p999, loss] = await Promise.all<Series>([one("p50"), one("p99"), one("p999"), one("loss")]);
      if (!alive) return;
      charts.splice(0).forEach((c) => c.destroy());
      clear(latencyBox);
      clear(lossBox);
      const points = p99.points.filter((p) => p.value !== null).length;
      clear(info, `${formatWindow(from, to)} · step ${step} s · ${points} points with data`);
      charts.push(
        lineChart(latencyBox, {
          title: "latency",
          unit: "ms",
          scaleBy: 1000,
          decimals: 2,
          lines: [
            { label: "P50", color: "#2e7d32", points: p50.points },
            { label: "P99", color: "#ef6c00", points: p99.points },
            { label: "P99.9", color: "#c62828", points: p999.points },
          ],
        }),
        lineChart(lossBox, {
          title: "loss",
          unit: "%",
          scaleBy: 0.01,
          decimals: 3,
          lines: [{ label: "loss", color: "#6a1b9a", points: loss.points }],
        }),
      );
    } catch (e) {
      if (!alive) return;
      const na = e instanceof ApiError && e.notAvailable;
      const nodata = e instanceof ApiError && e.status === 404 && !na;
      clear(
        info,
        notice(
          na ? "na" : nodata ? "info" : "error",
          na
            ? "The series query API (/api/v1/series) is not available on this server."
            : nodata
              ? `No data yet: ${e.message}.`
              : `Could not load the history: ${e instanceof Error ? e.message : String(e)}`,
        ),
      );
    }
  };
  void load();
  const timer = q.range === "live" ? setInterval(() => void load(), 10_000) : undefined;
  return () => {
    alive = false;
    if (timer !== undefined) clearInterval(timer);
    charts.forEach((c) => c.destroy());
  };
}
