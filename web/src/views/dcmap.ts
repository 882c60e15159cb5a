/** Level 1's map: DCs on a circle, a link per DC pair coloured by the worse of both directions. */

import type { Matrix } from "../api";
import { h } from "../dom";
import { formatValue } from "../format";
import { colorOf, COLORS, type Scale } from "../scale";

const SVG = "http://www.w3.org/2000/svg";

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export function dcMap(
  m: Matrix,
  scale: Scale,
  onDc: (dc: string) => void,
  onPair: (src: string, dst: string) => void,
): HTMLElement {
  const names = m.rows;
  const n = names.length;
  const size = 360;
  const c = size / 2;
  const radius = n <= 1 ? 0 : size / 2 - 60;
  const pos = names.map((_, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
    return { x: c + radius * Math.cos(a), y: c + radius * Math.sin(a) };
  });
  const svg = s("svg", { viewBox: `0 0 ${size} ${size}`, class: "dcmap", role: "img", "aria-label": "DC links" });
  const col = new Map(m.cols.map((name, i) => [name, i]));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = names[i] ?? "";
      const b = names[j] ?? "";
      const ab = m.cells[i]?.[col.get(b) ?? -1];
      const ji = m.rows.indexOf(b);
      const ba = m.cells[ji]?.[col.get(a) ?? -1];
      const vals = [ab, ba].filter((x) => x !== undefined && !x.missing && x.value !== null).map((x) => x?.value ?? 0);
      const worst = vals.length > 0 ? Math.max(...vals) : null;
      const color = worst === null ? COLORS.hatch : colorOf(worst, false, scale);
      const p = pos[i];
      const q = pos[j];
      if (p === undefined || q === undefined) continue;
      const g = s("g", { class: "link" });
      g.appendChild(s("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, stroke: color, "stroke-width": 6, "stroke-dasharray": worst === null ? "4 4" : "none" }));
      const label = s("text", { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 - 4, "text-anchor": "middle", class: "link-label" });
      label.textContent =
        `${formatValue(ab?.missing ? null : ab?.value, m.unit)} / ${formatValue(ba?.missing ? null : ba?.value, m.unit)}`;
      g.appendChild(label);
      const title = s("title", {});
      title.textContent = `${a} → ${b}: ${formatValue(ab?.missing ? null : ab?.value, m.unit)}\n${b} → ${a}: ${formatValue(ba?.missing ? null : ba?.value, m.unit)}`;
      g.appendChild(title);
      g.addEventListener("click", () => onPair(a, b));
      svg.appendChild(g);
    }
  }
  names.forEach((name, i) => {
    const p = pos[i];
    if (p === undefined) return;
    const self = m.cells[i]?.[col.get(name) ?? -1];
    const fill = self === undefined || self.missing || self.value === null ? COLORS.nodata : colorOf(self.value, false, scale);
    const g = s("g", { class: "node" });
    g.appendChild(s("circle", { cx: p.x, cy: p.y, r: 22, fill, stroke: "#333", "stroke-width": 1.5 }));
    const t = s("text", { x: p.x, y: p.y + 4, "text-anchor": "middle", class: "node-label" });
    t.textContent = name;
    g.appendChild(t);
    const title = s("title", {});
    title.textContent = `${name} (inside): ${formatValue(self?.missing ? null : self?.value, m.unit)} — open its racks`;
    g.appendChild(title);
    g.addEventListener("click", () => onDc(name));
    svg.appendChild(g);
  });
  return h("figure", { class: "dcmap-box" }, svg as unknown as HTMLElement, h("figcaption", null, "DC links (A→B / B→A); click a DC to open it, a link for its history"));
}
