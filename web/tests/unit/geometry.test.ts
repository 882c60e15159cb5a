import { describe, expect, it } from "vitest";
import { canvasSize, cellAt, cellRect, colLabelAt, groupBoundaries, layout, rowLabelAt, type Geometry } from "../../src/geometry";
import { orderMatrix } from "../../src/matrixsort";
import { fieldCandidates } from "../../src/forms";

const g: Geometry = { left: 100, top: 50, cell: 10, rows: 3, cols: 4, labels: true };

describe("hit-testing", () => {
  it("maps points to cells by arithmetic", () => {
    expect(cellAt(g, 100, 50)).toEqual({ row: 0, col: 0 });
    expect(cellAt(g, 109.9, 59.9)).toEqual({ row: 0, col: 0 });
    expect(cellAt(g, 110, 60)).toEqual({ row: 1, col: 1 });
    expect(cellAt(g, 139.9, 79.9)).toEqual({ row: 2, col: 3 });
  });
  it("misses outside the cells", () => {
    expect(cellAt(g, 99, 55)).toBeNull();
    expect(cellAt(g, 105, 49)).toBeNull();
    expect(cellAt(g, 140, 55)).toBeNull();
    expect(cellAt(g, 105, 80)).toBeNull();
  });
  it("finds row and column labels", () => {
    expect(rowLabelAt(g, 20, 75)).toBe(2);
    expect(rowLabelAt(g, 20, 85)).toBeNull();
    expect(rowLabelAt(g, 120, 75)).toBeNull();
    expect(colLabelAt(g, 125, 10)).toBe(2);
    expect(colLabelAt(g, 50, 10)).toBeNull();
  });
  it("inverts cellRect", () => {
    const r = cellRect(g, { row: 2, col: 1 });
    expect(cellAt(g, r.x + r.w / 2, r.y + r.h / 2)).toEqual({ row: 2, col: 1 });
  });
  it("handles fractional cells of a 1000 × 1000 matrix", () => {
    const big = layout(1000, 1000, 1200, 120);
    expect(big.labels).toBe(false);
    expect(big.cell).toBeCloseTo(1.192, 3);
    expect(cellAt(big, big.left + 999.5 * big.cell, big.top + 0.5 * big.cell)).toEqual({ row: 0, col: 999 });
    expect(cellAt(big, big.left + 1000 * big.cell, big.top)).toBeNull();
    expect(canvasSize(big).width).toBeLessThanOrEqual(1200 + 4);
  });
  it("gives small matrices labels and whole-pixel cells", () => {
    const small = layout(8, 8, 1200, 80);
    expect(small.labels).toBe(true);
    expect(Number.isInteger(small.cell)).toBe(true);
    expect(small.left).toBeGreaterThanOrEqual(80);
  });
});

describe("ordering and grouping", () => {
  const cell = (v: number | null) => ({ value: v, samples: 1, missing: v === null });
  const rows = ["s10", "s2", "s1"];
  const cells = [
    [cell(1), cell(2), cell(3)],
    [cell(4), cell(500), cell(6)],
    [cell(7), cell(8), cell(null)],
  ];
  const rackOf = (n: string) => (n === "s2" ? "r2" : "r1");
  it("sorts names naturally", () => {
    const o = orderMatrix(rows, rows, cells, "name", rackOf);
    expect(o.rows).toEqual(["s1", "s2", "s10"]);
    expect(o.cells[0]?.[2]?.value).toBe(7);
    expect(o.cells[0]?.[0]?.missing).toBe(true);
  });
  it("groups by rack with boundaries", () => {
    const o = orderMatrix(rows, rows, cells, "rack", rackOf);
    expect(o.rows).toEqual(["s1", "s10", "s2"]);
    expect(groupBoundaries(o.rowGroups)).toEqual([2]);
  });
  it("puts the worst first", () => {
    const o = orderMatrix(rows, rows, cells, "worst", rackOf);
    expect(o.rows[0]).toBe("s2");
    expect(o.cols[0]).toBe("s2");
  });
});

describe("API error fields", () => {
  it("falls back from a nested field to its enclosing ones", () => {
    expect(fieldCandidates("probes[1].port")).toEqual(["probes[1].port", "probes[1]", "probes"]);
    expect(fieldCandidates("rack_ratio")).toEqual(["rack_ratio"]);
    expect(fieldCandidates("dc.rack_ratio")).toEqual(["dc.rack_ratio", "dc", "rack_ratio"]);
  });
});
