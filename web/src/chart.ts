/** History charts on uPlot: several series over time, aligned on the union of their timestamps. */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { SeriesPoint } from "./api";
import { chartValue, tickDecimals } from "./format";

export interface Line {
  label: string;
  color: string;
  points: SeriesPoint[];
}

/** Aligns series on the sorted union of their timestamps; gaps become null. */
export function align(lines: readonly SeriesPoint[][]): [number[], ...(number | null)[][]] {
  const ts = new Set<number>();
  for (const l of lines) for (const p of l) ts.add(p.t);
  const xs = [...ts].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const ys = lines.map((l) => {
    const y = new Array<number | null>(xs.length).fill(null);
    for (const p of l) {
      const i = index.get(p.t);
      if (i !== undefined) y[i] = p.value;
    }
    return y;
  });
  return [xs, ...ys];
}

export function lineChart(
  el: HTMLElement,
  opts: { title: string; unit: string; lines: Line[]; scaleBy: number; decimals: number },
): { destroy: () => void } {
  const [xs, ...ys] = align(opts.lines.map((l) => l.points));
  const data = [xs, ...ys.map((y) => y.map((v) => (v === null ? null : v / opts.scaleBy)))] as uPlot.AlignedData;
  const width = () => Math.max(280, el.clientWidth - 8);
  const plot = new uPlot(
    {
      title: opts.title,
      width: width(),
      height: 240,
      series: [
        {},
        ...opts.lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 1.5,
          spanGaps: false,
          value: (_: uPlot, v: number | null) => (v === null ? "–" : `${chartValue(v, opts.decimals)} ${opts.unit}`),
        })),
      ],
      axes: [
        {},
        {
          label: opts.unit,
          size: 60,
          values: (_: uPlot, vals: number[]) => {
            const d = tickDecimals(vals.length > 1 ? Math.abs(vals[1] - vals[0]) : 0, opts.decimals);
            return vals.map((v) => v.toFixed(d));
          },
        },
      ],
      scales: { x: { time: true } },
      legend: { live: true },
    },
    data,
    el,
  );
  const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: 240 }));
  ro.observe(el);
  return {
    destroy: () => {
      ro.disconnect();
      plot.destroy();
    },
  };
}
