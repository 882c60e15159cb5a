/** The three heatmap levels: DC × DC, rack × rack in a DC, server × server in/between racks. */

import { allServers, api, ApiError, type Matrix, type Server } from "../api";
import { STATUS_EVENT, type Ctx } from "../app";
import { legend, toolbar } from "../controls";
import { confirmDialog } from "../dialog";
import { clear, h, notice } from "../dom";
import { formatCount, formatValue, formatWindow } from "../format";
import { groupBoundaries } from "../geometry";
import { Heatmap } from "../heatmap";
import { orderMatrix, type Ordered } from "../matrixsort";
import { loadThresholds } from "../prefs";
import { href, windowOf, type View } from "../route";
import { METRIC_LABELS, scaleFor, type Scale } from "../scale";
import { dcMap } from "./dcmap";

type MatrixViewKind = Extract<View, { kind: "dcs" | "racks" | "servers" | "dcServers" }>;

function maxValue(m: Matrix): number {
  let max = 0;
  for (const line of m.cells) for (const c of line) if (!c.missing && c.value !== null && c.value > max) max = c.value;
  return max;
}

export function matrixView(ctx: Ctx): () => void {
  const view = ctx.route.view as MatrixViewKind;
  const q = ctx.route.q;
  const dcsView: View = { kind: "dcs" };
  const trail: [string, View | null][] = [["All DCs", dcsView]];
  if (view.kind !== "dcs") trail.push([view.dc, { kind: "racks", dc: view.dc }]);
  if (view.kind === "servers") {
    trail.push([view.srcRack === view.dstRack ? `rack ${view.srcRack}` : `racks ${view.srcRack} → ${view.dstRack}`, null]);
  }
  if (view.kind === "dcServers") trail.push(["all servers", null]);
  ctx.crumbs(trail);

  const title =
    view.kind === "dcs"
      ? "DC × DC"
      : view.kind === "racks"
        ? `Racks of ${view.dc}`
        : view.kind === "servers"
          ? view.srcRack === view.dstRack
            ? `Servers of rack ${view.srcRack} (${view.dc})`
            : `Servers of rack ${view.srcRack} → rack ${view.dstRack} (${view.dc})`
          : `All servers of ${view.dc}`;

  const info = h("div", { class: "info", "data-testid": "matrix-info" });
  const legendBox = h("div");
  const body = h("div", { class: "matrix-body" });
  const side = h("div", { class: "matrix-side" });
  const links = h("div", { class: "links" });
  clear(
    ctx.root,
    h("div", { class: "view-head" }, h("h1", null, `${title} — ${METRIC_LABELS[q.metric]}`), links),
    toolbar(ctx, { sort: view.kind !== "dcs", metric: true }),
    legendBox,
    info,
    h("div", { class: "matrix-layout" }, body, side),
  );
  addLinks(ctx, view, links);

  let servers = new Map<string, Server>();
  let ordered: Ordered | null = null;
  let matrix: Matrix | null = null;
  let scale: Scale | null = null;

  const heatmap = new Heatmap({
    tooltip: ({ row, col }) => {
      if (ordered === null || matrix === null) return "";
      const src = ordered.rows[row] ?? "";
      const dst = ordered.cols[col] ?? "";
      const cell = ordered.cells[row]?.[col];
      const addr = (n: string) => {
        const s = servers.get(n);
        return s !== undefined && s.addresses.length > 0 ? ` (${s.addresses.join(", ")})` : "";
      };
      return h(
        "div",
        null,
        h("div", null, h("b", null, src), addr(src), " → ", h("b", null, dst), addr(dst)),
        h(
          "div",
          { class: "tip-value" },
          `${METRIC_LABELS[matrix.metric] ?? matrix.metric}: `,
          cell === undefined || cell.missing ? "no data" : formatValue(cell.value, matrix.unit),
        ),
        h("div", null, `samples: ${cell?.samples ?? 0}`),
        h("div", { class: "muted" }, formatWindow(matrix.from, matrix.to)),
      );
    },
    onCell: ({ row, col }) => {
      if (ordered === null) return;
      const src = ordered.rows[row] ?? "";
      const dst = ordered.cols[col] ?? "";
      cellTarget(ctx, view, src, dst);
    },
    onRow: (row) => {
      if (ordered === null) return;
      rowTarget(ctx, view, ordered.rows[row] ?? "");
    },
    onCol: (col) => {
      if (ordered === null) return;
      rowTarget(ctx, view, ordered.cols[col] ?? "");
    },
  });
  body.appendChild(heatmap.el);

  const draw = () => {
    if (matrix === null) return;
    const m = matrix;
    scale = scaleFor(q.metric, loadThresholds(), maxValue(m));
    const group = (name: string) => servers.get(name)?.rack ?? "";
    ordered = orderMatrix(m.rows, m.cols, m.cells, q.sort, group);
    const rowGroups = groupBoundaries(ordered.rowGroups);
    const colGroups = groupBoundaries(ordered.colGroups);
    heatmap.set({
      rows: ordered.rows,
      cols: ordered.cols,
      cells: ordered.cells,
      scale,
      rowGroups,
      colGroups,
      highlightRow: q.hl !== "" ? ordered.rows.indexOf(q.hl) : -1,
      highlightCol: q.hl !== "" ? ordered.cols.indexOf(q.hl) : -1,
      format: (value) => formatValue(value, m.unit),
    });
    clear(legendBox, legend(scale, draw));
    let cells = 0;
    let empty = 0;
    let red = 0;
    for (const line of m.cells) {
      for (const c of line) {
        cells++;
        if (c.missing || c.value === null) empty++;
        else if (scale.thresholds !== null && c.value > scale.thresholds.bad) red++;
      }
    }
    clear(
      info,
      `${m.rows.length} × ${m.cols.length} · ${formatWindow(m.from, m.to)} · `,
      h("span", { class: red > 0 ? "bad-text" : "" }, `${formatCount(red)} above threshold`),
      ` · ${formatCount(empty)} of ${formatCount(cells)} without data`,
      q.range === "live" ? h("span", { class: "live" }, " · live") : null,
    );
    if (view.kind === "dcs" && scale !== null) {
      clear(
        side,
        dcMap(m, scale, (dc) => ctx.go({ kind: "racks", dc }), (a, b) =>
          ctx.go({ kind: "history", scope: "dc_pair", src: a, dst: b, dc: "" }),
        ),
      );
    }
  };

  let alive = true;
  const load = async () => {
    const { from, to } = windowOf(q, Math.floor(Date.now() / 1000));
    const protocol = q.protocol;
    try {
      const needServers = view.kind === "servers" || view.kind === "dcServers";
      const [m, list] = await Promise.all([
        api.matrix({
          level: view.kind === "dcs" ? "dc" : view.kind === "racks" ? "rack" : "server",
          dc: view.kind === "dcs" ? undefined : view.dc,
          src_rack: view.kind === "servers" ? view.srcRack : undefined,
          dst_rack: view.kind === "servers" ? view.dstRack : undefined,
          metric: q.metric,
          protocol,
          from,
          to,
        }),
        needServers && servers.size === 0 ? serversOf(view) : Promise.resolve(null),
      ]);
      if (!alive) return;
      if (list !== null) servers = new Map(list.map((s) => [s.name, s]));
      matrix = m;
      if (m.rows.length === 0 || m.cols.length === 0) {
        clear(info, notice("info", "No data in this window: no probes were reported, or nothing is configured here yet."));
      }
      draw();
    } catch (e) {
      if (!alive) return;
      clear(info, matrixFailure(e, view));
    }
  };
  void load();
  const timer = q.range === "live" ? setInterval(() => void load(), 10_000) : undefined;
  return () => {
    alive = false;
    if (timer !== undefined) clearInterval(timer);
    heatmap.destroy();
  };
}

function matrixFailure(e: unknown, view: MatrixViewKind): HTMLElement {
  if (!(e instanceof ApiError)) return notice("error", `Could not load the matrix: ${String(e)}`);
  if (e.notAvailable) return notice("na", "The matrix query API (/api/v1/matrix) is not available on this server.");
  if (e.status === 404) return notice("info", `No data yet: ${e.message}.`);
  if (view.kind === "dcServers" && e.field === "src_rack") {
    return notice("na", `${e.message}. Open a rack pair from the DC's rack view.`);
  }
  return notice("error", `Could not load the matrix: ${e.message}`);
}

async function serversOf(view: MatrixViewKind): Promise<Server[]> {
  if (view.kind === "servers") {
    const racks = view.srcRack === view.dstRack ? [view.srcRack] : [view.srcRack, view.dstRack];
    const lists = await Promise.all(racks.map((rack) => api.servers({ dc: view.dc, rack, limit: 10000 })));
    return lists.flatMap((l) => l.items);
  }
  if (view.kind === "dcServers") return allServers(view.dc);
  return [];
}

function cellTarget(ctx: Ctx, view: MatrixViewKind, src: string, dst: string): void {
  switch (view.kind) {
    case "dcs":
      if (src === dst) ctx.go({ kind: "racks", dc: src });
      else ctx.go({ kind: "history", scope: "dc_pair", src, dst, dc: "" });
      return;
    case "racks":
      ctx.go({ kind: "servers", dc: view.dc, srcRack: src, dstRack: dst });
      return;
    case "servers":
    case "dcServers":
      ctx.go({ kind: "history", scope: "pair", src, dst, dc: view.dc });
  }
}

function rowTarget(ctx: Ctx, view: MatrixViewKind, name: string): void {
  switch (view.kind) {
    case "dcs":
      ctx.go({ kind: "racks", dc: name });
      return;
    case "racks":
      ctx.go({ kind: "servers", dc: view.dc, srcRack: name, dstRack: name });
      return;
    case "servers":
    case "dcServers":
      ctx.go({ kind: "history", scope: "server", src: name, dst: "", dc: view.dc });
  }
}

function addLinks(ctx: Ctx, view: MatrixViewKind, box: HTMLElement): void {
  const q = { ...ctx.route.q, hl: "" };
  const a = (label: string, v: View, testid: string) => h("a", { class: "btn small", href: href(v, q), "data-testid": testid }, label);
  if (view.kind === "racks") {
    box.append(
      a("all servers by rack", { kind: "dcServers", dc: view.dc }, "link-dc-servers"),
      a("history of this DC", { kind: "history", scope: "dc_pair", src: view.dc, dst: view.dc, dc: "" }, "link-history"),
      dcStopButton(ctx, view.dc),
    );
  }
  if (view.kind === "servers") {
    box.append(
      a(
        "history of this rack pair",
        { kind: "history", scope: "rack_pair", src: view.srcRack, dst: view.dstRack, dc: view.dc },
        "link-history",
      ),
    );
    if (view.srcRack !== view.dstRack) {
      box.append(a("reverse direction", { kind: "servers", dc: view.dc, srcRack: view.dstRack, dstRack: view.srcRack }, "link-reverse"));
    }
  }
}

/** Stops or resumes probing in one DC; follows the controller status as it is refreshed. */
export function dcStopButton(ctx: Ctx, dc: string): HTMLElement {
  const isStopped = () => ctx.status()?.stopped_dcs.includes(dc) ?? false;
  const btn = h("button", { "data-testid": "stop-dc" });
  const label = () => {
    const stopped = isStopped();
    btn.className = stopped ? "btn primary small" : "btn danger small";
    btn.textContent = stopped ? `resume ${dc}` : `stop probing in ${dc}`;
  };
  btn.addEventListener("click", async () => {
    const stopped = isStopped();
    if (
      !stopped &&
      !(await confirmDialog(
        `Stop probing in ${dc}?`,
        `Agents of ${dc} stop probing at their next pinglist pull, and other DCs stop probing ${dc}'s servers.`,
        `Stop ${dc}`,
      ))
    ) {
      return;
    }
    try {
      if (stopped) await api.resume(dc);
      else await api.stop(dc);
    } finally {
      await ctx.refreshStatus();
    }
  });
  const onStatus = () => {
    if (!btn.isConnected) window.removeEventListener(STATUS_EVENT, onStatus);
    else label();
  };
  window.addEventListener(STATUS_EVENT, onStatus);
  label();
  return btn;
}
