/** Ordering of matrix rows and columns: by name, grouped (by rack or DC), or worst first. */

import type { Cell } from "./api";
import type { Sort } from "./route";

export interface Ordered {
  rows: string[];
  cols: string[];
  cells: Cell[][];
  rowGroups: string[];
  colGroups: string[];
}

const NO_CELL: Cell = { value: null, samples: 0, missing: true };

function worst(cells: Cell[][], n: number, along: "row" | "col", other: number): number[] {
  const score = new Array<number>(n).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < other; j++) {
      const c = along === "row" ? cells[i]?.[j] : cells[j]?.[i];
      if (c !== undefined && !c.missing && c.value !== null && c.value > (score[i] ?? -Infinity)) score[i] = c.value;
    }
  }
  return score;
}

/**
 * Reorders a matrix. `group` names each row/column's group (its rack, or DC); "rack" sorts by
 * group then name, "worst" by the largest value in the row (column), "name" by name.
 */
export function orderMatrix(
  rows: string[],
  cols: string[],
  cells: Cell[][],
  sort: Sort,
  group: (name: string) => string,
): Ordered {
  const byName = (names: string[]) => (a: number, b: number) => cmp(names[a] ?? "", names[b] ?? "");
  const ri = rows.map((_, i) => i);
  const ci = cols.map((_, i) => i);
  if (sort === "worst") {
    const rs = worst(cells, rows.length, "row", cols.length);
    const cs = worst(cells, cols.length, "col", rows.length);
    ri.sort((a, b) => (rs[b] ?? 0) - (rs[a] ?? 0) || byName(rows)(a, b));
    ci.sort((a, b) => (cs[b] ?? 0) - (cs[a] ?? 0) || byName(cols)(a, b));
  } else if (sort === "rack") {
    const byGroup = (names: string[]) => (a: number, b: number) =>
      cmp(group(names[a] ?? ""), group(names[b] ?? "")) || byName(names)(a, b);
    ri.sort(byGroup(rows));
    ci.sort(byGroup(cols));
  } else {
    ri.sort(byName(rows));
    ci.sort(byName(cols));
  }
  const identity = ri.every((v, i) => v === i) && ci.every((v, i) => v === i);
  const out = identity
    ? cells
    : ri.map((r) => {
        const line = cells[r];
        return ci.map((c) => line?.[c] ?? NO_CELL);
      });
  const rNames = ri.map((i) => rows[i] ?? "");
  const cNames = ci.map((i) => cols[i] ?? "");
  return {
    rows: rNames,
    cols: cNames,
    cells: out,
    rowGroups: sort === "rack" ? rNames.map(group) : [],
    colGroups: sort === "rack" ? cNames.map(group) : [],
  };
}

/** Natural order: "r2" before "r10". */
export function cmp(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}
