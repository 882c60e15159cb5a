/** Formatting of values for display: latencies (stored in µs), ratios (loss), counts, times. */

export type Unit = "us" | "ratio" | "count";

/** Significant-figure formatting that keeps small values readable: 3 significant digits. */
function sig3(x: number): string {
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** A latency in microseconds: "216 µs", "1.30 ms", "12.5 ms", "1.20 s". */
export function formatLatencyUs(us: number): string {
  const a = Math.abs(us);
  if (a < 1000) return `${Math.round(us)} µs`;
  if (a < 1_000_000) return `${sig3(us / 1000)} ms`;
  return `${sig3(us / 1_000_000)} s`;
}

/** A ratio as a percentage: 0 → "0 %", 1e-5 → "0.001 %", 0.0123 → "1.23 %", 1 → "100 %". */
export function formatRatio(r: number): string {
  if (r === 0) return "0 %";
  const pct = r * 100;
  const a = Math.abs(pct);
  if (a >= 100) return `${pct.toFixed(0)} %`;
  if (a >= 0.01) return `${sig3(pct)} %`;
  // Tiny loss (the paper's normal is 1e-6 … 1e-5): two significant digits, no exponent.
  const digits = Math.min(8, Math.ceil(-Math.log10(a)) + 1);
  return `${trimZeros(pct.toFixed(digits))} %`;
}

function trimZeros(s: string): string {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

/** A count: 1234567 → "1,234,567". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** A value in its unit; null (no data) → "no data". */
export function formatValue(v: number | null | undefined, unit: Unit): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "no data";
  switch (unit) {
    case "us":
      return formatLatencyUs(v);
    case "ratio":
      return formatRatio(v);
    case "count":
      return formatCount(v);
  }
}

/** Unix seconds → "2024-05-01 12:34:56" in local time. */
export function formatTime(unixS: number): string {
  const d = new Date(unixS * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
  );
}

/** Age of a past instant: "12 s ago", "5 min ago", "3 h ago", "2 d ago", "never" for 0. */
export function formatAge(unixMs: number, nowMs: number): string {
  if (unixMs <= 0) return "never";
  const s = Math.max(0, Math.round((nowMs - unixMs) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A window [from, to] in Unix seconds: "12:00:00 – 13:00:00 (1 h)". */
export function formatWindow(from: number, to: number): string {
  const span = to - from;
  let len: string;
  if (span < 120) len = `${span} s`;
  else if (span < 7200) len = `${Math.round(span / 60)} min`;
  else if (span < 172800) len = `${Math.round(span / 3600)} h`;
  else len = `${Math.round(span / 86400)} d`;
  return `${formatTime(from)} – ${formatTime(to)} (${len})`;
}

/** Decimals that tell apart ticks `step` apart (at least `min`, at most 6): loopback RTTs are
 * ~0.01 ms, which 2 fixed decimals would print as "0.01" on every tick. */
export function tickDecimals(step: number, min: number): number {
  if (!(step > 0) || !Number.isFinite(step)) return min;
  return Math.min(6, Math.max(min, Math.ceil(-Math.log10(step) - 1e-9)));
}

/** A value with `decimals`, or 3 significant digits when that would round a non-zero value away. */
export function chartValue(v: number, decimals: number): string {
  const fixed = v.toFixed(decimals);
  if (v !== 0 && Math.abs(v) < 10 ** -decimals * 10) return String(Number(v.toPrecision(3)));
  return fixed;
}
