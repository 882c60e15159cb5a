/**
 * Heatmap geometry: where the cells are on the canvas, and which cell or label a point hits.
 * Pure arithmetic, so hit-testing costs O(1) whatever the size of the matrix.
 */

export interface Geometry {
  /** CSS pixels from the canvas' left edge to the first column (row labels live left of it). */
  left: number;
  /** CSS pixels from the canvas' top edge to the first row (column labels live above it). */
  top: number;
  /** Side of one (square) cell in CSS pixels; may be fractional for large matrices. */
  cell: number;
  rows: number;
  cols: number;
  /** True when the cells are big enough for names to be drawn beside them. */
  labels: boolean;
}

export const MIN_CELL = 1;
export const MAX_CELL = 64;
/** Cells at least this big show their value. */
export const VALUE_CELL = 48;
/** Cells at least this big get row/column names. */
export const LABEL_CELL = 12;

/**
 * Lays out a rows × cols matrix in a box `width` CSS pixels wide. `labelWidth` is the room the
 * longest name needs; it is used only when the cells end up big enough to carry names.
 */
export function layout(rows: number, cols: number, width: number, labelWidth: number): Geometry {
  const margin = 4;
  const fit = (room: number) => Math.min(MAX_CELL, Math.max(MIN_CELL, room / Math.max(cols, 1)));
  let cell = fit(width - 2 * margin);
  let labels = false;
  if (cell >= LABEL_CELL) {
    const withLabels = fit(width - labelWidth - 2 * margin);
    if (withLabels >= LABEL_CELL) {
      cell = withLabels;
      labels = true;
    }
  }
  if (cell > 2) cell = Math.floor(cell);
  const pad = labels ? labelWidth + margin : margin;
  return { left: pad, top: pad, cell, rows, cols, labels };
}

export function canvasSize(g: Geometry): { width: number; height: number } {
  return {
    width: Math.ceil(g.left + g.cols * g.cell + 4),
    height: Math.ceil(g.top + g.rows * g.cell + 4),
  };
}

export interface Hit {
  row: number;
  col: number;
}

/** The cell under point (x, y) in CSS pixels relative to the canvas, or null. */
export function cellAt(g: Geometry, x: number, y: number): Hit | null {
  const col = Math.floor((x - g.left) / g.cell);
  const row = Math.floor((y - g.top) / g.cell);
  if (x < g.left || y < g.top || col < 0 || row < 0 || col >= g.cols || row >= g.rows) return null;
  return { row, col };
}

/** The row whose name is under (x, y) (left of the cells), or null. */
export function rowLabelAt(g: Geometry, x: number, y: number): number | null {
  if (x >= g.left || x < 0 || y < g.top) return null;
  const row = Math.floor((y - g.top) / g.cell);
  return row < g.rows ? row : null;
}

/** The column whose name is under (x, y) (above the cells), or null. */
export function colLabelAt(g: Geometry, x: number, y: number): number | null {
  if (y >= g.top || y < 0 || x < g.left) return null;
  const col = Math.floor((x - g.left) / g.cell);
  return col < g.cols ? col : null;
}

/** The rectangle of a cell in CSS pixels. */
export function cellRect(g: Geometry, h: Hit): { x: number; y: number; w: number; h: number } {
  return { x: g.left + h.col * g.cell, y: g.top + h.row * g.cell, w: g.cell, h: g.cell };
}

/** Indices where a sorted list of group keys changes, for the separators between groups. */
export function groupBoundaries(keys: readonly string[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < keys.length; i++) if (keys[i] !== keys[i - 1]) out.push(i);
  return out;
}
