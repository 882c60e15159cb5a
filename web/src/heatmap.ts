/**
 * The heatmap: one <canvas> for the cells (drawn as one image, one pixel per cell, scaled), one
 * overlay canvas for the hover outline, and one tooltip element. Hit-testing is arithmetic
 * (geometry.ts), so a 1,000 × 1,000 matrix costs one pass over its cells to draw and O(1) per
 * mouse move.
 */

import type { Cell } from "./api";
import { h } from "./dom";
import { canvasSize, cellAt, cellRect, colLabelAt, layout, rowLabelAt, VALUE_CELL, type Geometry, type Hit } from "./geometry";
import { COLORS, colorOf, packRgb, type Scale } from "./scale";

export interface HeatmapData {
  rows: string[];
  cols: string[];
  cells: Cell[][];
  scale: Scale;
  /** Indices (into rows/cols) where a new group starts: a separator is drawn there. */
  rowGroups: number[];
  colGroups: number[];
  /** Row and column indices to outline (a searched server). */
  highlightRow: number;
  highlightCol: number;
  /** Text of a value, drawn inside cells that are big enough. */
  format: (value: number) => string;
}

export interface HeatmapHandlers {
  tooltip: (hit: Hit) => HTMLElement | string;
  onCell: (hit: Hit) => void;
  onRow?: (row: number) => void;
  onCol?: (col: number) => void;
}

const LABEL_FONT = "11px system-ui, sans-serif";

export class Heatmap {
  readonly el: HTMLElement;
  private readonly base: HTMLCanvasElement;
  private readonly overlay: HTMLCanvasElement;
  private readonly tip: HTMLElement;
  private geom: Geometry | null = null;
  private data: HeatmapData | null = null;
  private hover: Hit | null = null;
  private readonly resize: ResizeObserver;
  private lastWidth = 0;

  constructor(private readonly handlers: HeatmapHandlers) {
    this.base = h("canvas", { class: "hm-base", "data-testid": "heatmap" });
    this.overlay = h("canvas", { class: "hm-overlay", "data-testid": "heatmap-overlay" });
    this.tip = h("div", { class: "hm-tip", role: "tooltip", hidden: true });
    const stack = h("div", { class: "hm-stack" }, this.base, this.overlay);
    this.el = h("div", { class: "hm" }, stack, this.tip);
    this.overlay.addEventListener("mousemove", (e) => this.onMove(e));
    this.overlay.addEventListener("mouseleave", () => this.setHover(null, 0, 0));
    this.overlay.addEventListener("click", (e) => this.onClick(e));
    this.resize = new ResizeObserver(() => {
      const w = this.el.clientWidth;
      if (w !== this.lastWidth && this.data !== null) this.draw();
    });
    this.resize.observe(this.el);
  }

  destroy(): void {
    this.resize.disconnect();
  }

  /** The current geometry (for tests and for the caller's hit-testing). */
  geometry(): Geometry | null {
    return this.geom;
  }

  set(data: HeatmapData): void {
    this.data = data;
    this.draw();
  }

  private labelWidth(names: string[]): number {
    const ctx = this.base.getContext("2d");
    if (ctx === null) return 80;
    ctx.font = LABEL_FONT;
    let w = 0;
    const step = Math.max(1, Math.floor(names.length / 200));
    for (let i = 0; i < names.length; i += step) w = Math.max(w, ctx.measureText(names[i] ?? "").width);
    return Math.min(160, Math.ceil(w) + 8);
  }

  private draw(): void {
    const d = this.data;
    if (d === null) return;
    this.lastWidth = this.el.clientWidth;
    const width = Math.max(this.lastWidth, 200);
    const g = layout(d.rows.length, d.cols.length, width, this.labelWidth([...d.rows, ...d.cols]));
    this.geom = g;
    const { width: cw, height: ch } = canvasSize(g);
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    for (const c of [this.base, this.overlay]) {
      c.width = Math.round(cw * dpr);
      c.height = Math.round(ch * dpr);
      c.style.width = `${cw}px`;
      c.style.height = `${ch}px`;
    }
    const ctx = this.base.getContext("2d");
    if (ctx === null) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cellImage(d), g.left, g.top, g.cols * g.cell, g.rows * g.cell);
    if (g.cell >= 5) drawHatches(ctx, g, d.cells);
    if (g.cell >= 8) drawGrid(ctx, g);
    drawGroups(ctx, g, d.rowGroups, d.colGroups);
    if (g.labels) drawLabels(ctx, g, d.rows, d.cols);
    if (g.cell >= VALUE_CELL) drawValues(ctx, g, d);
    this.drawOverlay();
    this.describe(g, d);
  }

  /** Geometry (and names, for small matrices) on the element, for browser tests and tooling. */
  private describe(g: Geometry, d: HeatmapData): void {
    const small = d.rows.length <= 500 && d.cols.length <= 500;
    this.overlay.dataset.geometry = JSON.stringify({
      left: g.left,
      top: g.top,
      cell: g.cell,
      rows: small ? d.rows : d.rows.length,
      cols: small ? d.cols : d.cols.length,
    });
    this.el.dataset.drawn = String(performance.now());
  }

  private drawOverlay(): void {
    const g = this.geom;
    const d = this.data;
    const ctx = this.overlay.getContext("2d");
    if (g === null || d === null || ctx === null) return;
    const dpr = this.overlay.width / Math.max(1, parseFloat(this.overlay.style.width));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    const w = g.cols * g.cell;
    const hgt = g.rows * g.cell;
    ctx.strokeStyle = "#1b4dd8";
    ctx.lineWidth = 2;
    if (d.highlightRow >= 0) ctx.strokeRect(g.left, g.top + d.highlightRow * g.cell, w, Math.max(g.cell, 2));
    if (d.highlightCol >= 0) ctx.strokeRect(g.left + d.highlightCol * g.cell, g.top, Math.max(g.cell, 2), hgt);
    if (this.hover !== null) {
      const r = cellRect(g, this.hover);
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 1.5;
      const s = Math.max(r.w, 4);
      ctx.strokeRect(r.x - (s - r.w) / 2, r.y - (s - r.h) / 2, s, s);
      ctx.fillStyle = "rgba(0,0,0,0.06)";
      ctx.fillRect(g.left, r.y, w, r.h);
      ctx.fillRect(r.x, g.top, r.w, hgt);
    }
  }

  private point(e: MouseEvent): { x: number; y: number } {
    const r = this.overlay.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  private onMove(e: MouseEvent): void {
    const g = this.geom;
    if (g === null) return;
    const { x, y } = this.point(e);
    const hit = cellAt(g, x, y);
    this.setHover(hit, e.clientX, e.clientY);
    const label = rowLabelAt(g, x, y) !== null || colLabelAt(g, x, y) !== null;
    this.overlay.style.cursor = hit !== null || label ? "pointer" : "default";
  }

  private setHover(hit: Hit | null, cx: number, cy: number): void {
    const same = hit !== null && this.hover !== null && hit.row === this.hover.row && hit.col === this.hover.col;
    if (!same) {
      this.hover = hit;
      this.drawOverlay();
    }
    if (hit === null) {
      this.tip.hidden = true;
      return;
    }
    if (!same) {
      const content = this.handlers.tooltip(hit);
      this.tip.replaceChildren(typeof content === "string" ? document.createTextNode(content) : content);
    }
    this.tip.hidden = false;
    const tw = this.tip.offsetWidth;
    const th = this.tip.offsetHeight;
    const x = cx + 14 + tw > window.innerWidth ? cx - tw - 10 : cx + 14;
    const y = cy + 14 + th > window.innerHeight ? cy - th - 10 : cy + 14;
    this.tip.style.left = `${Math.max(0, x)}px`;
    this.tip.style.top = `${Math.max(0, y)}px`;
  }

  private onClick(e: MouseEvent): void {
    const g = this.geom;
    if (g === null) return;
    const { x, y } = this.point(e);
    const hit = cellAt(g, x, y);
    if (hit !== null) {
      this.handlers.onCell(hit);
      return;
    }
    const row = rowLabelAt(g, x, y);
    if (row !== null && this.handlers.onRow) {
      this.handlers.onRow(row);
      return;
    }
    const col = colLabelAt(g, x, y);
    if (col !== null && this.handlers.onCol) this.handlers.onCol(col);
  }
}

/** One pixel per cell, coloured by the scale. */
function cellImage(d: HeatmapData): HTMLCanvasElement {
  const rows = d.rows.length;
  const cols = d.cols.length;
  const img = document.createElement("canvas");
  img.width = Math.max(cols, 1);
  img.height = Math.max(rows, 1);
  const ctx = img.getContext("2d");
  if (ctx === null) return img;
  const data = ctx.createImageData(img.width, img.height);
  const px = new Uint32Array(data.data.buffer);
  const cache = new Map<string, number>();
  const packed = (color: string): number => {
    let v = cache.get(color);
    if (v === undefined) {
      v = packRgb(color);
      cache.set(color, v);
    }
    return v;
  };
  const nodata = packed(COLORS.nodata);
  for (let r = 0; r < rows; r++) {
    const line = d.cells[r];
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const cell = line?.[c];
      px[base + c] =
        cell === undefined || cell.missing || cell.value === null
          ? nodata
          : packed(colorOf(cell.value, false, d.scale));
    }
  }
  ctx.putImageData(data, 0, 0);
  return img;
}

let hatchPattern: CanvasPattern | null = null;

function hatch(ctx: CanvasRenderingContext2D): CanvasPattern | string {
  if (hatchPattern !== null) return hatchPattern;
  const t = document.createElement("canvas");
  t.width = 6;
  t.height = 6;
  const c = t.getContext("2d");
  if (c === null) return COLORS.hatch;
  c.fillStyle = COLORS.nodata;
  c.fillRect(0, 0, 6, 6);
  c.strokeStyle = COLORS.hatch;
  c.lineWidth = 1;
  c.beginPath();
  c.moveTo(0, 6);
  c.lineTo(6, 0);
  c.moveTo(-1, 1);
  c.lineTo(1, -1);
  c.moveTo(5, 7);
  c.lineTo(7, 5);
  c.stroke();
  hatchPattern = ctx.createPattern(t, "repeat");
  return hatchPattern ?? COLORS.hatch;
}

function drawHatches(ctx: CanvasRenderingContext2D, g: Geometry, cells: Cell[][]): void {
  ctx.fillStyle = hatch(ctx);
  for (let r = 0; r < g.rows; r++) {
    const line = cells[r];
    for (let c = 0; c < g.cols; c++) {
      const cell = line?.[c];
      if (cell === undefined || cell.missing || cell.value === null) {
        ctx.fillRect(g.left + c * g.cell, g.top + r * g.cell, g.cell, g.cell);
      }
    }
  }
}

function drawGrid(ctx: CanvasRenderingContext2D, g: Geometry): void {
  ctx.strokeStyle = "rgba(255,255,255,0.9)";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let i = 0; i <= g.cols; i++) {
    const x = Math.round(g.left + i * g.cell) + 0.5;
    ctx.moveTo(x, g.top);
    ctx.lineTo(x, g.top + g.rows * g.cell);
  }
  for (let i = 0; i <= g.rows; i++) {
    const y = Math.round(g.top + i * g.cell) + 0.5;
    ctx.moveTo(g.left, y);
    ctx.lineTo(g.left + g.cols * g.cell, y);
  }
  ctx.stroke();
}

function drawGroups(ctx: CanvasRenderingContext2D, g: Geometry, rows: number[], cols: number[]): void {
  if (rows.length === 0 && cols.length === 0) return;
  ctx.strokeStyle = "#222";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const c of cols) {
    const x = Math.round(g.left + c * g.cell) + 0.5;
    ctx.moveTo(x, g.top);
    ctx.lineTo(x, g.top + g.rows * g.cell);
  }
  for (const r of rows) {
    const y = Math.round(g.top + r * g.cell) + 0.5;
    ctx.moveTo(g.left, y);
    ctx.lineTo(g.left + g.cols * g.cell, y);
  }
  ctx.stroke();
}

function drawLabels(ctx: CanvasRenderingContext2D, g: Geometry, rows: string[], cols: string[]): void {
  ctx.font = LABEL_FONT;
  ctx.fillStyle = "#333";
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  const room = g.left - 8;
  for (let r = 0; r < rows.length; r++) {
    ctx.fillText(fit(ctx, rows[r] ?? "", room), g.left - 4, g.top + (r + 0.5) * g.cell);
  }
  ctx.save();
  ctx.textAlign = "left";
  for (let c = 0; c < cols.length; c++) {
    ctx.save();
    ctx.translate(g.left + (c + 0.5) * g.cell, g.top - 4);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(fit(ctx, cols[c] ?? "", g.top - 8), 0, 0);
    ctx.restore();
  }
  ctx.restore();
}

function drawValues(ctx: CanvasRenderingContext2D, g: Geometry, d: HeatmapData): void {
  ctx.font = "600 11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      const cell = d.cells[r]?.[c];
      if (cell === undefined || cell.missing || cell.value === null) continue;
      ctx.fillStyle = textOn(colorOf(cell.value, false, d.scale));
      ctx.fillText(fit(ctx, d.format(cell.value), g.cell - 4), g.left + (c + 0.5) * g.cell, g.top + (r + 0.5) * g.cell);
    }
  }
}

/** Black or white text, whichever reads better on `bg`. */
function textOn(bg: string): string {
  const n = parseInt(bg.slice(1), 16);
  const lum = 0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return lum > 150 ? "#111" : "#fff";
}

function fit(ctx: CanvasRenderingContext2D, s: string, room: number): string {
  if (ctx.measureText(s).width <= room) return s;
  let t = s;
  while (t.length > 1 && ctx.measureText(`${t}…`).width > room) t = t.slice(0, -1);
  return `${t}…`;
}
