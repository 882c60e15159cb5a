import { describe, expect, it } from "vitest";
import { bandOf, colorOf, COLORS, DEFAULT_THRESHOLDS, packRgb, scaleFor, unitOf } from "../../src/scale";

const p99 = scaleFor("p99", DEFAULT_THRESHOLDS);
const loss = scaleFor("loss", DEFAULT_THRESHOLDS);

describe("latency bands (paper: green < 4 ms, yellow 4–5 ms, red > 5 ms)", () => {
  it("puts values in the right band at and around the thresholds", () => {
    const t = DEFAULT_THRESHOLDS.latency;
    expect(bandOf(1300, false, t)).toBe("good");
    expect(bandOf(3999, false, t)).toBe("good");
    expect(bandOf(4000, false, t)).toBe("warn");
    expect(bandOf(5000, false, t)).toBe("warn");
    expect(bandOf(5001, false, t)).toBe("bad");
  });
  it("draws no data distinctly, whatever the value", () => {
    expect(bandOf(null, false, DEFAULT_THRESHOLDS.latency)).toBe("nodata");
    expect(bandOf(100, true, DEFAULT_THRESHOLDS.latency)).toBe("nodata");
    expect(colorOf(null, true, p99)).toBe(COLORS.nodata);
    expect(colorOf(100, true, p99)).toBe(COLORS.nodata);
  });
  it("colours by band", () => {
    expect(bandOfColor(colorOf(200, false, p99))).toBe("good");
    expect(bandOfColor(colorOf(4500, false, p99))).toBe("warn");
    expect(bandOfColor(colorOf(9000, false, p99))).toBe("bad");
  });
  it("follows configured thresholds", () => {
    const custom = scaleFor("p99", { latency: { good: 1000, bad: 2000 }, loss: DEFAULT_THRESHOLDS.loss });
    expect(bandOfColor(colorOf(1500, false, custom))).toBe("warn");
    expect(bandOfColor(colorOf(2500, false, custom))).toBe("bad");
  });
});

describe("loss bands (green < 0.1 %, yellow 0.1–1 %, red > 1 %)", () => {
  it("bands loss ratios", () => {
    expect(bandOfColor(colorOf(1e-5, false, loss))).toBe("good");
    expect(bandOfColor(colorOf(0.001, false, loss))).toBe("warn");
    expect(bandOfColor(colorOf(0.01, false, loss))).toBe("warn");
    expect(bandOfColor(colorOf(0.02, false, loss))).toBe("bad");
  });
});

describe("counts", () => {
  it("use a sequential scale without thresholds", () => {
    const s = scaleFor("probes", DEFAULT_THRESHOLDS, 400);
    expect(s.thresholds).toBeNull();
    expect(unitOf("probes")).toBe("count");
    expect(colorOf(0, false, s)).not.toBe(colorOf(400, false, s));
    expect(colorOf(null, true, s)).toBe(COLORS.nodata);
  });
});

describe("pixel packing", () => {
  it("packs #rrggbb as little-endian RGBA", () => {
    expect(packRgb("#ff0000")).toBe(0xff0000ff);
    expect(packRgb("#00ff00")).toBe(0xff00ff00);
    expect(packRgb("#0000ff")).toBe(0xffff0000);
  });
});

/** Which band a colour belongs to: green, yellow or red by its dominant channels. */
function bandOfColor(hex: string): string {
  const n = parseInt(hex.slice(1), 16);
  const r = (n >> 16) & 255;
  const g = (n >> 8) & 255;
  if (g > r * 1.3) return "good";
  if (r > g * 1.5) return "bad";
  return "warn";
}
