import "./style.css";
import { api, ApiError, setTokenProvider, type Status } from "./api";
import { STATUS_EVENT, type Ctx } from "./app";
import { askToken, confirmDialog } from "./dialog";
import { clear, h } from "./dom";
import { formatHash, hasDataQuery, href, parseHash, type Query, type Route, type View } from "./route";
import { findServer } from "./search";
import { agentsView } from "./views/agents";
import { alertsView } from "./views/alerts";
import { configView } from "./views/config";
import { historyView } from "./views/history";
import { matrixView } from "./views/matrix";

setTokenProvider(askToken);

let status: Status | null = null;
let leave: (() => void) | void = undefined;
let route: Route = parseHash(location.hash);

const banner = h("div", { class: "banner", hidden: true, "data-testid": "stopped-banner", role: "alert" });
const crumbBar = h("nav", { class: "crumbs", "aria-label": "breadcrumbs" });
const main = h("main", { class: "content" });
const searchMsg = h("span", { class: "search-msg", role: "status" });
const stopBtn = h("button", { class: "btn danger small", "data-testid": "stop-all" }, "Stop all probing");

function navLink(label: string, view: View, match: (v: View) => boolean): HTMLElement {
  const a = h("a", { href: formatHash({ view, q: route.q }) }, label);
  a.dataset.match = "";
  matchers.set(a, match);
  return a;
}
const matchers = new Map<HTMLElement, (v: View) => boolean>();

const searchInput = h("input", {
  type: "search",
  placeholder: "server name or address",
  "aria-label": "search a server",
  "data-testid": "search",
});
const searchForm = h(
  "form",
  {
    class: "search",
    onsubmit: (e: Event) => {
      e.preventDefault();
      void search(searchInput.value.trim());
    },
  },
  searchInput,
  searchMsg,
);

const header = h(
  "header",
  { class: "top" },
  h("a", { class: "brand", href: "#/dc" }, "pingmesh"),
  h(
    "nav",
    { class: "menu" },
    navLink("Heatmaps", { kind: "dcs" }, (v) => hasDataQuery(v)),
    navLink("Alerts", { kind: "alerts" }, (v) => v.kind === "alerts"),
    navLink("Agents", { kind: "agents", dc: "" }, (v) => v.kind === "agents"),
    navLink("Config", { kind: "config", section: "dcs", name: "", dc: "" }, (v) => v.kind === "config"),
  ),
  searchForm,
  stopBtn,
);

stopBtn.addEventListener("click", () => void toggleStopAll());

const app = document.getElementById("app");
if (app === null) throw new Error("no #app element");
app.append(header, banner, crumbBar, main);

async function search(q: string): Promise<void> {
  if (q === "") return;
  searchMsg.textContent = "searching…";
  try {
    const s = await findServer(q);
    if (s === null) {
      searchMsg.textContent = `no server matches “${q}”`;
      return;
    }
    searchMsg.textContent = "";
    if (s.rack === "") {
      go({ kind: "agents", dc: s.dc });
      return;
    }
    go({ kind: "servers", dc: s.dc, srcRack: s.rack, dstRack: s.rack }, { hl: s.name });
  } catch (e) {
    searchMsg.textContent = e instanceof Error ? e.message : String(e);
  }
}

async function toggleStopAll(): Promise<void> {
  const stopped = status?.stopped === true;
  if (!stopped) {
    const ok = await confirmDialog(
      "Stop all probing?",
      "Every agent drops its peers at its next pinglist pull and stops probing (it keeps answering probes). " +
        "Heatmaps will turn to no data until probing is resumed.",
      "Stop all probing",
    );
    if (!ok) return;
  }
  try {
    status = stopped ? await api.resume() : await api.stop();
  } catch (e) {
    showError(e);
  }
  await refreshStatus();
}

function showError(e: unknown): void {
  const msg = e instanceof ApiError ? e.message : e instanceof Error ? e.message : String(e);
  const el = h("div", { class: "toast", role: "alert" }, msg);
  document.body.appendChild(el);
  setTimeout(() => el.remove(), 6000);
}

function drawBanner(): void {
  const s = status;
  const stoppedDcs = s?.stopped_dcs ?? [];
  if (s === null || (!s.stopped && stoppedDcs.length === 0)) {
    banner.hidden = true;
    stopBtn.textContent = "Stop all probing";
    stopBtn.className = "btn danger small";
    return;
  }
  banner.hidden = false;
  const text = s.stopped
    ? "Probing is STOPPED in every DC."
    : `Probing is stopped in ${stoppedDcs.length === 1 ? "DC" : "DCs"} ${stoppedDcs.join(", ")}.`;
  const resume = h(
    "button",
    {
      class: "btn small",
      "data-testid": "banner-resume",
      onclick: async () => {
        try {
          if (s.stopped) await api.resume();
          else for (const dc of stoppedDcs) await api.resume(dc);
        } catch (e) {
          showError(e);
        }
        await refreshStatus();
      },
    },
    "Resume",
  );
  clear(banner, h("span", null, text), resume);
  stopBtn.textContent = s.stopped ? "Resume probing" : "Stop all probing";
  stopBtn.className = s.stopped ? "btn primary small" : "btn danger small";
}

async function refreshStatus(): Promise<void> {
  try {
    status = await api.status();
  } catch {
    status = null;
  }
  drawBanner();
  window.dispatchEvent(new Event(STATUS_EVENT));
}

function go(view: View, q?: Partial<Query>): void {
  const next: Route = { view, q: { ...route.q, hl: "", ...q } };
  location.hash = formatHash(next);
}

function setQuery(patch: Partial<Query>): void {
  const next: Route = { view: route.view, q: { ...route.q, ...patch } };
  history.replaceState(null, "", formatHash(next));
  render();
}

function crumbs(trail: [string, View | null][]): void {
  clear(
    crumbBar,
    trail.flatMap(([label, view], i) =>
      view !== null && i < trail.length - 1
        ? [h("a", { href: href(view, { ...route.q, hl: "" }) }, label), h("span", { class: "sep" }, "›")]
        : [h("span", { class: "here" }, label), i < trail.length - 1 ? h("span", { class: "sep" }, "›") : null],
    ),
  );
}

function render(): void {
  route = parseHash(location.hash);
  if (typeof leave === "function") leave();
  leave = undefined;
  for (const [a, match] of matchers) {
    a.classList.toggle("active", match(route.view));
    if (a.textContent === "Heatmaps") a.setAttribute("href", href({ kind: "dcs" }, { ...route.q, hl: "" }));
  }
  clear(crumbBar);
  const root = h("div", { class: "view" });
  clear(main, root);
  const ctx: Ctx = { root, route, go, setQuery, status: () => status, refreshStatus, crumbs };
  const v = route.view;
  switch (v.kind) {
    case "dcs":
    case "racks":
    case "servers":
    case "dcServers":
      leave = matrixView(ctx);
      break;
    case "history":
      leave = historyView(ctx);
      break;
    case "alerts":
      leave = alertsView(ctx);
      break;
    case "agents":
      leave = agentsView(ctx);
      break;
    case "config":
      leave = configView(ctx);
      break;
  }
}

window.addEventListener("hashchange", render);
window.addEventListener("unhandledrejection", (e) => showError(e.reason));
if (location.hash === "") history.replaceState(null, "", formatHash(route));
render();
void refreshStatus();
setInterval(() => void refreshStatus(), 10_000);
