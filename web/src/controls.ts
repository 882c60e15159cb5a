/** The data toolbar (metric, protocol, time range, sort) and the colour legend. */

import type { Ctx } from "./app";
import { h } from "./dom";
import { formatValue } from "./format";
import { loadThresholds, saveThresholds } from "./prefs";
import { PROTOCOLS, RANGES, SORTS, type Query } from "./route";
import { COLORS, countColor, METRIC_LABELS, METRICS, unitOf, type Metric, type Scale } from "./scale";

const RANGE_LABELS: Record<string, string> = {
  live: "live (10 s)",
  "1h": "last 1 h",
  "24h": "last 24 h",
  "7d": "last 7 d",
  custom: "custom",
};

const SORT_LABELS: Record<string, string> = {
  name: "sort by name",
  rack: "group by rack/DC",
  worst: "worst first",
};

function select<T extends string>(
  label: string,
  values: readonly T[],
  current: T,
  text: (v: T) => string,
  onChange: (v: T) => void,
): HTMLElement {
  const s = h(
    "select",
    { "aria-label": label, "data-testid": `sel-${label}`, onchange: () => onChange(s.value as T) },
    values.map((v) => h("option", { value: v, selected: v === current }, text(v))),
  );
  return h("label", { class: "ctl" }, h("span", null, label), s);
}

function toLocalInput(unixS: number): string {
  const d = new Date(unixS * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function toolbar(ctx: Ctx, opts: { sort: boolean; metric: boolean }): HTMLElement {
  const q = ctx.route.q;
  const items: HTMLElement[] = [];
  if (opts.metric) {
    items.push(select("metric", METRICS, q.metric, (m) => METRIC_LABELS[m], (metric) => ctx.setQuery({ metric })));
  }
  items.push(select("protocol", PROTOCOLS, q.protocol, (p) => p, (protocol) => ctx.setQuery({ protocol })));
  items.push(
    select("range", RANGES, q.range, (r) => RANGE_LABELS[r] ?? r, (range) => {
      if (range === "custom") {
        const now = Math.floor(Date.now() / 1000);
        ctx.setQuery({ range, from: now - 3600, to: now });
      } else {
        ctx.setQuery({ range, from: 0, to: 0 });
      }
    }),
  );
  if (q.range === "custom") items.push(customRange(ctx, q));
  if (opts.sort) {
    items.push(select("sort", SORTS, q.sort, (s) => SORT_LABELS[s] ?? s, (sort) => ctx.setQuery({ sort })));
  }
  return h("div", { class: "toolbar" }, items);
}

function customRange(ctx: Ctx, q: Query): HTMLElement {
  const from = h("input", { type: "datetime-local", value: toLocalInput(q.from), "aria-label": "from" });
  const to = h("input", { type: "datetime-local", value: toLocalInput(q.to), "aria-label": "to" });
  const apply = () => {
    const f = Math.floor(new Date(from.value).getTime() / 1000);
    const t = Math.floor(new Date(to.value).getTime() / 1000);
    if (Number.isFinite(f) && Number.isFinite(t) && t > f) ctx.setQuery({ from: f, to: t });
  };
  return h(
    "span",
    { class: "ctl custom" },
    from,
    "–",
    to,
    h("button", { class: "btn small", onclick: apply }, "apply"),
  );
}

/** The legend of a scale, with the thresholds editable in place (kept in localStorage). */
export function legend(scale: Scale, onChange: () => void): HTMLElement {
  const unit = unitOf(scale.metric);
  const swatch = (color: string, text: string, cls = "") =>
    h("span", { class: "lg-item" }, h("span", { class: `sw ${cls}`, style: `background:${color}` }), text);
  const nodata = swatch(COLORS.nodata, "no data", "hatch");
  if (scale.thresholds === null) {
    return h(
      "div",
      { class: "legend", "data-testid": "legend" },
      swatch(countColor(0, scale.max), "0"),
      swatch(countColor(scale.max / 2, scale.max), formatValue(scale.max / 2, unit)),
      swatch(countColor(scale.max, scale.max), formatValue(scale.max, unit)),
      nodata,
    );
  }
  const t = scale.thresholds;
  const edit = h(
    "button",
    {
      class: "btn link small",
      onclick: () => {
        const kind = unit === "us" ? "latency" : "loss";
        const factor = unit === "us" ? 1000 : 0.01;
        const label = unit === "us" ? "ms" : "%";
        const good = prompt(`green below (${label})`, String(t.good / factor));
        if (good === null) return;
        const bad = prompt(`red above (${label})`, String(t.bad / factor));
        if (bad === null) return;
        const g = Number(good) * factor;
        const b = Number(bad) * factor;
        if (!(g > 0 && b >= g)) return;
        const all = loadThresholds();
        all[kind] = { good: g, bad: b };
        saveThresholds(all);
        onChange();
      },
    },
    "thresholds…",
  );
  return h(
    "div",
    { class: "legend", "data-testid": "legend" },
    swatch(COLORS.good, `< ${formatValue(t.good, unit)}`),
    swatch(COLORS.warn, `${formatValue(t.good, unit)} – ${formatValue(t.bad, unit)}`),
    swatch(COLORS.bad, `> ${formatValue(t.bad, unit)}`),
    nodata,
    edit,
  );
}

export function metricLabel(m: Metric): string {
  return METRIC_LABELS[m];
}
