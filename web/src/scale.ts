/**
 * Colour scale of the heatmaps. Latency and loss use the paper's three bands (green / yellow /
 * red) with configurable thresholds; counts use a neutral sequential blue. Missing cells are
 * drawn as "no data" (light grey with a hatch), never as a colour of the scale.
 */

import type { Unit } from "./format";

export type Metric = "p50" | "p90" | "p99" | "p999" | "p9999" | "mean" | "max" | "loss" | "probes";

export const METRICS: readonly Metric[] = ["p50", "p99", "p999", "loss", "probes"];

export const METRIC_LABELS: Record<Metric, string> = {
  p50: "P50",
  p90: "P90",
  p99: "P99",
  p999: "P99.9",
  p9999: "P99.99",
  mean: "mean",
  max: "max",
  loss: "loss",
  probes: "probes",
};

export function unitOf(metric: Metric): Unit {
  if (metric === "loss") return "ratio";
  if (metric === "probes") return "count";
  return "us";
}

/** Bands: value < good → green; good ≤ value ≤ bad → yellow; value > bad → red. */
export interface Thresholds {
  good: number;
  bad: number;
}

/** The paper's thresholds: P99 green < 4 ms, yellow 4–5 ms, red > 5 ms; loss 0.1 % / 1 %. */
export const DEFAULT_THRESHOLDS: Record<"latency" | "loss", Thresholds> = {
  latency: { good: 4000, bad: 5000 },
  loss: { good: 0.001, bad: 0.01 },
};

export type Band = "good" | "warn" | "bad" | "nodata" | "count";

export const COLORS = {
  good: "#2e9d4f",
  warn: "#f2c12e",
  bad: "#d93b3b",
  nodata: "#eeeeee",
  hatch: "#b8b8b8",
} as const;

export function bandOf(value: number | null, missing: boolean, t: Thresholds): Band {
  if (missing || value === null || Number.isNaN(value)) return "nodata";
  if (value < t.good) return "good";
  if (value <= t.bad) return "warn";
  return "bad";
}

export interface Scale {
  metric: Metric;
  /** Thresholds for latency/loss; null for counts (sequential scale). */
  thresholds: Thresholds | null;
  /** Largest value of the data, for the sequential scale. */
  max: number;
}

export function scaleFor(metric: Metric, thresholds: Record<"latency" | "loss", Thresholds>, max = 1): Scale {
  const unit = unitOf(metric);
  const t = unit === "us" ? thresholds.latency : unit === "ratio" ? thresholds.loss : null;
  return { metric, thresholds: t, max: Math.max(max, 1) };
}

/** RGBA packed for a little-endian Uint32Array view of ImageData (0xAABBGGRR). */
export function packRgb(hex: string): number {
  const n = parseInt(hex.slice(1), 16);
  const r = (n >> 16) & 255;
  const g = (n >> 8) & 255;
  const b = n & 255;
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** Sequential blue for counts: light for few, dark for many. */
export function countColor(value: number, max: number): string {
  const f = Math.max(0, Math.min(1, value / max));
  const l = Math.round(92 - f * 55);
  return hslToHex(212, 70, l);
}

function hslToHex(h: number, s: number, l: number): string {
  const sf = s / 100;
  const lf = l / 100;
  const k = (n: number) => (n + h / 30) % 12;
  const a = sf * Math.min(lf, 1 - lf);
  const f = (n: number) => lf - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  const hex = (x: number) => Math.round(x * 255).toString(16).padStart(2, "0");
  return `#${hex(f(0))}${hex(f(8))}${hex(f(4))}`;
}

/** The colour of one cell; "no data" cells get the no-data fill (the hatch is drawn over it). */
export function colorOf(value: number | null, missing: boolean, scale: Scale): string {
  if (missing || value === null || Number.isNaN(value)) return COLORS.nodata;
  if (scale.thresholds === null) return countColor(value, scale.max);
  const t = scale.thresholds;
  const band = bandOf(value, missing, t);
  // Shades inside a band keep structure visible (intra- vs inter-rack) without hiding the band.
  if (band === "good") return mix(GOOD_LIGHT, GOOD_DARK, step(value / t.good));
  if (band === "bad") return mix(BAD_LIGHT, BAD_DARK, step((value - t.bad) / (2 * t.bad)));
  return COLORS.warn;
}

const GOOD_LIGHT = "#6cc486";
const GOOD_DARK = "#1f7a3a";
const BAD_LIGHT = "#e25555";
const BAD_DARK = "#9e1c1c";
const STEPS = 6;

/** Quantized position in [0, 1], so a heatmap uses at most a few distinct colours per band. */
function step(f: number): number {
  return Math.round(Math.max(0, Math.min(1, f)) * STEPS) / STEPS;
}

function mix(a: string, b: string, f: number): string {
  const x = parseInt(a.slice(1), 16);
  const y = parseInt(b.slice(1), 16);
  const ch = (shift: number) => {
    const u = (x >> shift) & 255;
    const v = (y >> shift) & 255;
    return Math.round(u + (v - u) * f).toString(16).padStart(2, "0");
  };
  return `#${ch(16)}${ch(8)}${ch(0)}`;
}
