/** Agents: every server with liveness, version, last heartbeat and pinglist size. */

import { api, ApiError, type Dc, type PinglistSummary, type Server } from "../api";
import type { Ctx } from "../app";
import { clear, h, notice } from "../dom";
import { formatAge } from "../format";
import { href } from "../route";

const PAGE = 200;

export function agentsView(ctx: Ctx): () => void {
  const v = ctx.route.view;
  const dc = v.kind === "agents" ? v.dc : "";
  ctx.crumbs([["Agents", null]]);
  let offset = 0;
  const table = h("div", { class: "table-wrap" }, notice("info", "loading…"));
  const pager = h("div", { class: "pager" });
  const summary = h("div", { class: "info" });
  const dcSel = h("select", {
    "aria-label": "DC",
    onchange: () => ctx.go({ kind: "agents", dc: dcSel.value }),
  }, h("option", { value: "" }, "all DCs"));
  clear(
    ctx.root,
    h("div", { class: "view-head" }, h("h1", null, "Agents")),
    h("div", { class: "toolbar" }, h("label", { class: "ctl" }, h("span", null, "DC"), dcSel)),
    summary,
    table,
    pager,
  );
  void api.dcs().then((l: { items: Dc[] }) => {
    for (const d of l.items) dcSel.append(h("option", { value: d.name, selected: d.name === dc }, d.name));
  }).catch(() => undefined);

  let alive = true;
  const load = async () => {
    try {
      const [servers, pinglists] = await Promise.all([
        api.servers({ dc: dc === "" ? undefined : dc, offset, limit: PAGE }),
        api.pinglists({ dc: dc === "" ? undefined : dc, offset, limit: PAGE }).catch((e: unknown) => {
          if (e instanceof ApiError && e.notAvailable) return null;
          throw e;
        }),
      ]);
      if (!alive) return;
      const pl = new Map<string, PinglistSummary>((pinglists?.items ?? []).map((p) => [p.server, p]));
      const now = Date.now();
      const alive_ = servers.items.filter((s) => s.alive === true).length;
      clear(summary, `${servers.total} servers · page ${offset / PAGE + 1} · ${alive_} of ${servers.items.length} alive on this page`);
      const row = (s: Server) => {
        const p = pl.get(s.name);
        const live = s.alive ?? false;
        return h(
          "tr",
          { "data-server": s.name },
          h("td", null, h("span", { class: `dot ${live ? "dot-ok" : "dot-bad"}`, title: live ? "alive" : "silent" }), s.name),
          h("td", null, s.dc),
          h("td", null, s.rack === "" ? h("span", { class: "muted" }, "unplaced") : h("a", { href: href({ kind: "servers", dc: s.dc, srcRack: s.rack, dstRack: s.rack }, { ...ctx.route.q, hl: s.name }) }, s.rack)),
          h("td", { class: "mono" }, s.addresses.join(", ")),
          h("td", null, s.agent_version || "–"),
          h("td", { title: s.last_seen_ms > 0 ? new Date(s.last_seen_ms).toISOString() : "" }, formatAge(s.last_seen_ms, now)),
          h("td", { class: "num", "data-testid": "pinglist-entries" }, p === undefined ? "–" : String(p.entries)),
          h("td", null, p === undefined ? "–" : p.stopped ? "stopped" : p.chosen ? "chosen" : "not chosen"),
        );
      };
      clear(
        table,
        h(
          "table",
          { class: "grid", "data-testid": "agents-table" },
          h("thead", null, h("tr", null, ["server", "DC", "rack", "addresses", "version", "last heartbeat", "pinglist", "state"].map((t) => h("th", null, t)))),
          h("tbody", null, servers.items.map(row)),
        ),
      );
      clear(
        pager,
        h("button", { class: "btn small", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); void load(); } }, "‹ previous"),
        h("button", { class: "btn small", disabled: offset + PAGE >= servers.total, onclick: () => { offset += PAGE; void load(); } }, "next ›"),
      );
    } catch (e) {
      if (!alive) return;
      clear(
        table,
        e instanceof ApiError && e.notAvailable
          ? notice("na", "The server list (/api/v1/servers) is not available on this server.")
          : notice("error", `Could not load agents: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
  };
  void load();
  const timer = setInterval(() => void load(), 10_000);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
