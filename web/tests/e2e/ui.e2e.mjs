// Browser tests of the pingmesh UI: playwright-core driving Debian's chromium, headless.
//
//   PINGMESH_URL=http://127.0.0.1:9000 PINGMESH_ARTIFACTS=/tmp/ui-shots node tests/e2e/ui.e2e.mjs
//
// PINGMESH_URL      the server (real `pingmesh server`, or tests/mock-server.mjs); required
// PINGMESH_ARTIFACTS directory for one screenshot per test (created; default ./e2e-artifacts)
// PINGMESH_TOKEN    admin token for write calls (empty when the server has none: loopback writes)
// CHROMIUM          browser binary (default /usr/bin/chromium)
// PINGMESH_DC       DC to drill into (default: the first DC with at least two racks)
// E2E_GROUP         healthy | fault: only that group (default: both; tests/e2e/loopback_e2e.py
//                   runs healthy on the whole mesh, stops one agent, then runs fault)
// PINGMESH_DOWN_SERVER  fault group: the server whose agent was stopped (its server_down verdict
//                   and alert must show); without it any alert with a verdict will do (the mock)
// E2E_ONLY          only the tests whose name contains this
//
// Prints one line per test and a closing "N passed, N failed" line; exits 1 on any failure.

import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE = (process.env.PINGMESH_URL ?? "").replace(/\/$/, "");
if (BASE === "") {
  console.error("PINGMESH_URL is required, e.g. http://127.0.0.1:9000");
  process.exit(2);
}
const ARTIFACTS = path.resolve(process.env.PINGMESH_ARTIFACTS ?? "e2e-artifacts");
const TOKEN = process.env.PINGMESH_TOKEN ?? "";
const BROWSER = process.env.CHROMIUM ?? "/usr/bin/chromium";
fs.mkdirSync(ARTIFACTS, { recursive: true });

const api = async (p, init) => {
  const res = await fetch(`${BASE}${p}`, init);
  if (!res.ok) throw new Error(`${p}: ${res.status}`);
  return res.status === 204 ? null : res.json();
};
const writeHeaders = TOKEN !== "" ? { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" } : { "Content-Type": "application/json" };

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Waits until the heatmap is drawn (after `since`), returns its geometry. */
async function heatmap(page, since = 0) {
  await page.waitForFunction(
    (t) => {
      const el = document.querySelector(".hm");
      return el !== null && el.dataset.drawn !== undefined && Number(el.dataset.drawn) > t;
    },
    since,
    { timeout: 30000 },
  );
  return page.$eval('[data-testid="heatmap-overlay"]', (c) => JSON.parse(c.dataset.geometry));
}

async function drawnAt(page) {
  return page.evaluate(() => Number(document.querySelector(".hm")?.dataset.drawn ?? 0));
}

/** Clicks the cell (row name, col name) of the heatmap. */
async function clickCell(page, g, row, col) {
  const r = typeof row === "number" ? row : g.rows.indexOf(row);
  const c = typeof col === "number" ? col : g.cols.indexOf(col);
  assert(r >= 0 && c >= 0, `cell ${row} × ${col} not in heatmap (${JSON.stringify(g.rows)})`);
  const box = await page.locator('[data-testid="heatmap-overlay"]').boundingBox();
  const x = box.x + g.left + (c + 0.5) * g.cell;
  const y = box.y + g.top + (r + 0.5) * g.cell;
  await page.mouse.move(x, y);
  await page.waitForSelector(".hm-tip:not([hidden])", { timeout: 5000 });
  await page.mouse.click(x, y);
}

/** Fills the admin-token dialog if the UI asks for it. */
async function maybeToken(page) {
  const input = page.locator('[data-testid="token-input"]');
  try {
    await input.waitFor({ state: "visible", timeout: 1500 });
  } catch {
    return;
  }
  await input.fill(TOKEN);
  await page.click('[data-testid="token-ok"]');
}

async function pinglistEntries(dc) {
  let sum = 0;
  for (let offset = 0; ; offset += 1000) {
    const j = await api(`/api/v1/pinglists?dc=${encodeURIComponent(dc)}&offset=${offset}&limit=1000`);
    for (const it of j.items) sum += it.entries;
    if (j.items.length === 0 || offset + j.items.length >= j.total) break;
  }
  return sum;
}

async function entriesShown(page) {
  return page.$$eval('[data-testid="pinglist-entries"]', (tds) =>
    tds.reduce((s, td) => s + (Number(td.textContent) || 0), 0),
  );
}

/** Polls `fn` until it returns true; throws with its last answer (a string says why not) after `ms`. */
async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const r = await fn();
    if (r === true) return;
    if (Date.now() > end) throw new Error(`${what}: ${r}`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** After a write click: fills the admin-token dialog if it shows before `next` does. */
async function tokenBefore(page, next) {
  const input = page.locator('[data-testid="token-input"]');
  await input.or(next).filter({ visible: true }).first().waitFor({ timeout: 15000 });
  if (await input.isVisible()) {
    await input.fill(TOKEN);
    await page.click('[data-testid="token-ok"]');
  }
}

/** server → pinglist version of every server of a DC. */
async function pinglistVersions(dc) {
  const j = await api(`/api/v1/pinglists?dc=${encodeURIComponent(dc)}&limit=10000`);
  return new Map(j.items.map((it) => [it.server, String(it.version)]));
}

/** One server's pinglist (JSON), or null when the server does not serve it (the mock). */
async function pinglistOf(server) {
  const res = await fetch(`${BASE}/api/v1/pinglist/${encodeURIComponent(server)}?format=json`, { headers: { Accept: "application/json" } });
  if (res.status === 404) {
    const j = await res.json().catch(() => ({}));
    if (j.field === undefined) return null; // no such route: not served here
  }
  if (!res.ok) throw new Error(`pinglist of ${server}: HTTP ${res.status}`);
  return res.json();
}

/** Unix seconds as a datetime-local value in the page's time zone (as the toolbar shows them). */
async function localInput(page, unixS) {
  return page.evaluate((t) => {
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }, unixS);
}

/** page.waitForRequest that cannot become an unhandled rejection while the test awaits something else. */
function requestMade(page, pred) {
  const p = page.waitForRequest(pred, { timeout: 30000 });
  p.catch(() => {});
  return p;
}

const hashParams = (page) => new URLSearchParams(new URL(page.url()).hash.split("?")[1] ?? "");

// ---- tests ----------------------------------------------------------------------------------

const dcs = (await api("/api/v1/dcs?limit=1000")).items;
let DC = process.env.PINGMESH_DC ?? "";
if (DC === "") {
  for (const d of dcs) {
    const racks = await api(`/api/v1/dcs/${encodeURIComponent(d.name)}/racks?limit=1000`);
    if (racks.items.length >= 2) {
      DC = d.name;
      break;
    }
  }
  if (DC === "") DC = dcs[0]?.name ?? "";
}

const tests = [];
const test = (name, fn, group = "healthy") => tests.push({ name, fn, group });
const DOWN = process.env.PINGMESH_DOWN_SERVER ?? "";

test("overview: DC heatmap, legend, DC map", async (page) => {
  await page.goto(`${BASE}/#/dc`);
  const g = await heatmap(page);
  assert(g.rows.length === dcs.length, `expected ${dcs.length} DC rows, got ${g.rows.length}`);
  await page.waitForSelector('[data-testid="legend"]');
  await page.waitForSelector(".dcmap");
  const info = await page.textContent('[data-testid="matrix-info"]');
  assert(/×/.test(info), `no matrix info: ${info}`);
});

test("drill down three levels and back", async (page) => {
  await page.goto(`${BASE}/#/dc?metric=p99&range=1h`);
  let g = await heatmap(page);
  let t = await drawnAt(page);
  await clickCell(page, g, DC, DC);
  await page.waitForURL((u) => u.hash.startsWith(`#/dc/${encodeURIComponent(DC)}?`) || u.hash === `#/dc/${encodeURIComponent(DC)}`);
  g = await heatmap(page, t);
  assert(g.rows.length >= 1, "no racks");
  const r1 = g.rows[0];
  const r2 = g.rows[Math.min(1, g.rows.length - 1)];
  t = await drawnAt(page);
  await clickCell(page, g, r1, r2);
  await page.waitForURL((u) => u.hash.includes("/rack/"));
  g = await heatmap(page, t);
  assert(g.rows.length >= 1, "no servers");
  await page.screenshot({ path: path.join(ARTIFACTS, "drilldown-level3.png") });
  // back up through the breadcrumbs
  t = await drawnAt(page);
  await page.click(`.crumbs a:has-text("${DC}")`);
  g = await heatmap(page, t);
  assert(g.rows.includes(r1), "breadcrumb did not return to the rack level");
  t = await drawnAt(page);
  await page.click('.crumbs a:has-text("All DCs")');
  g = await heatmap(page, t);
  assert(g.rows.includes(DC), "breadcrumb did not return to the DC level");
  assert(page.url().includes("metric=p99") || !page.url().includes("metric="), "query state lost");
});

test("all servers of a DC, grouped by rack; the protocol selector refetches", async (page) => {
  const e = encodeURIComponent;
  await page.goto(`${BASE}/#/dc/${e(DC)}`);
  await heatmap(page);
  const t0 = await drawnAt(page);
  await page.click('[data-testid="link-dc-servers"]');
  await page.waitForURL((u) => u.hash.startsWith(`#/dc/${e(DC)}/servers`));
  let g = await heatmap(page, t0);
  const servers = (await api(`/api/v1/servers?dc=${e(DC)}&limit=10000`)).items;
  const m = await api(`/api/v1/matrix?level=server&dc=${e(DC)}&metric=p99&protocol=tcp`);
  assert(g.rows.length === m.rows.length && g.cols.length === m.cols.length, `drawn ${g.rows.length}×${g.cols.length}, API ${m.rows.length}×${m.cols.length}`);
  assert(m.rows.length > 0 && m.rows.every((n) => servers.some((s) => s.name === n)), `rows not servers of ${DC}: ${m.rows}`);
  // Racks span both levels: a server of the first rack probes one of another rack.
  const racks = new Set(servers.filter((s) => m.rows.includes(s.name)).map((s) => s.rack));
  assert(racks.size >= 2, `whole-DC matrix spans ${racks.size} rack(s)`);
  assert(m.cells.flat().some((c) => !c.missing), "whole-DC matrix has no data");
  // The tooltip of a cell with data: both names, their addresses, the value, samples, window.
  const ri = m.cells.findIndex((row) => row.some((c) => !c.missing));
  const ci = m.cells[ri].findIndex((c) => !c.missing);
  const [src, dst] = [m.rows[ri], m.cols[ci]];
  const box = await page.locator('[data-testid="heatmap-overlay"]').boundingBox();
  const r = g.rows.indexOf(src);
  const c = g.cols.indexOf(dst);
  await page.mouse.move(box.x + g.left + (c + 0.5) * g.cell, box.y + g.top + (r + 0.5) * g.cell);
  const tip = await page.locator(".hm-tip:not([hidden])").innerText({ timeout: 5000 });
  const addr = (n) => servers.find((s) => s.name === n).addresses[0];
  for (const want of [src, dst, addr(src), addr(dst), "P99", "samples: ", "min)"]) {
    assert(tip.includes(want), `tooltip of ${src} → ${dst} lacks "${want}": ${tip}`);
  }
  assert(!/no data/.test(tip), `tooltip of a cell with data says no data: ${tip}`);
  const t1 = await drawnAt(page);
  const asked = page.waitForRequest((r) => r.url().includes("/api/v1/matrix") && r.url().includes("protocol=icmp"));
  await page.selectOption('[data-testid="sel-protocol"]', "icmp");
  await asked;
  g = await heatmap(page, t1);
  assert(page.url().includes("protocol=icmp"), `protocol not in the URL: ${page.url()}`);
  const opts = await page.locator('[data-testid="sel-protocol"] option').allTextContents();
  assert(!opts.includes("all"), `protocol "all" offered: ${opts}`);
});

test("history chart of a server pair", async (page) => {
  await page.goto(`${BASE}/#/dc/${encodeURIComponent(DC)}`);
  let g = await heatmap(page);
  let t = await drawnAt(page);
  await clickCell(page, g, 0, 0);
  g = await heatmap(page, t);
  const col = g.cols.length > 1 ? 1 : 0;
  await clickCell(page, g, 0, col);
  await page.waitForURL((u) => u.hash.startsWith("#/history"));
  await page.waitForSelector('[data-testid="chart-latency"] .uplot', { timeout: 20000 });
  await page.waitForSelector('[data-testid="chart-loss"] .uplot');
});

test("DC map: a DC opens its racks, a link its DC pair's history", async (page) => {
  assert(dcs.length >= 2, `a DC map link needs two DCs, the server has ${dcs.length}`);
  const e = encodeURIComponent;
  await page.goto(`${BASE}/#/dc`);
  await heatmap(page);
  await page.waitForSelector(".dcmap g.node");
  const names = await page.$$eval(".dcmap g.node text.node-label", (ts) => ts.map((t) => t.textContent));
  assert(names.length === dcs.length && dcs.every((d) => names.includes(d.name)), `DC map nodes ${names}, DCs ${dcs.map((d) => d.name)}`);
  const links = await page.locator(".dcmap g.link").count();
  assert(links === (names.length * (names.length - 1)) / 2, `${links} links between ${names.length} DCs`);
  // A DC: its rack × rack heatmap.
  assert(names.includes(DC), `${DC} not on the DC map (${names})`);
  const node = page.locator(".dcmap g.node").nth(names.indexOf(DC));
  let t = await drawnAt(page);
  await node.click();
  await page.waitForURL((u) => u.hash === `#/dc/${e(DC)}`);
  const g = await heatmap(page, t);
  const racks = (await api(`/api/v1/dcs/${e(DC)}/racks?limit=1000`)).items.map((r) => r.name);
  assert(g.rows.length === racks.length && g.rows.every((r) => racks.includes(r)), `rows ${g.rows} are not the racks of ${DC} (${racks})`);
  assert((await page.textContent(".view-head h1")).startsWith(`Racks of ${DC}`), "rack view heading");
  // Back to the map; a link between two neighbouring DCs (no other link crosses its middle).
  t = await drawnAt(page);
  await page.goBack();
  await page.waitForURL((u) => u.hash === "#/dc");
  await heatmap(page, t);
  const [a, b] = names;
  const link = page.locator(".dcmap g.link").filter({ hasText: `${a} → ${b}:` });
  assert((await link.count()) === 1, `no single link ${a} → ${b}`);
  const label = await link.locator("text.link-label").textContent();
  assert(/\d/.test(label), `link ${a} – ${b} shows no value: ${label}`);
  const asked = requestMade(page, (r) => r.url().includes("/api/v1/series?") && r.url().includes(`scope=dc_pair&src=${e(a)}&dst=${e(b)}&`));
  await link.click();
  const want = `#/history?${new URLSearchParams({ scope: "dc_pair", src: a, dst: b })}`;
  await page.waitForURL((u) => u.hash === want);
  await asked;
  await page.waitForSelector('[data-testid="chart-latency"] .uplot', { timeout: 20000 });
  await page.waitForSelector('[data-testid="chart-loss"] .uplot');
  const title = await page.textContent(".view-head h1");
  assert(title === `History of DC pair ${a} → ${b}`, `history heading: ${title}`);
});

test("custom time range: chosen in the toolbar, in the URL, redrawn, kept on reload", async (page) => {
  await page.goto(`${BASE}/#/dc`);
  await heatmap(page);
  const range = page.locator('[data-testid="sel-range"]');
  let t = await drawnAt(page);
  await range.selectOption("custom");
  await page.waitForFunction(() => /[?&]range=custom&from=\d+&to=\d+/.test(location.hash), null, { timeout: 10000 });
  await heatmap(page, t);
  let q = hashParams(page);
  const [f0, t0] = [Number(q.get("from")), Number(q.get("to"))];
  assert(t0 - f0 === 3600 && Math.abs(t0 - Date.now() / 1000) < 300, `custom range preset ${f0}..${t0}`);
  const from = page.locator('input[aria-label="from"]');
  const to = page.locator('input[aria-label="to"]');
  assert((await from.inputValue()) === (await localInput(page, f0)), "from field does not show the URL's from");
  // A 21-minute window ending at the next whole minute, entered in the fields.
  const minute = Math.floor(Date.now() / 60000) * 60;
  const [F, T] = [minute - 20 * 60, minute + 60];
  const [fs, ts] = [await localInput(page, F), await localInput(page, T)];
  await from.fill(fs);
  await to.fill(ts);
  t = await drawnAt(page);
  const matrixAt = (r) => r.url().includes("/api/v1/matrix?") && r.url().includes(`&from=${F}&to=${T}`);
  let asked = requestMade(page, matrixAt);
  await page.click('.ctl.custom button:has-text("apply")');
  await asked;
  await page.waitForFunction(([f, x]) => location.hash.includes(`range=custom&from=${f}&to=${x}`), [F, T], { timeout: 10000 });
  let g = await heatmap(page, t);
  assert(g.rows.length === dcs.length, `custom window: ${g.rows.length} DC rows, expected ${dcs.length}`);
  await page.waitForFunction(() => /\(21 min\)/.test(document.querySelector('[data-testid="matrix-info"]')?.textContent ?? ""), null, { timeout: 10000 });
  // A reload of that URL keeps it: the control, the fields, the query.
  const url = page.url();
  asked = requestMade(page, matrixAt);
  await page.reload();
  await asked;
  g = await heatmap(page);
  assert(page.url() === url, `reload changed the URL: ${page.url()}`);
  assert((await range.inputValue()) === "custom", `range control after reload: ${await range.inputValue()}`);
  assert((await from.inputValue()) === fs && (await to.inputValue()) === ts, `fields after reload: ${await from.inputValue()} – ${await to.inputValue()}, expected ${fs} – ${ts}`);
  await page.waitForFunction(() => /\(21 min\)/.test(document.querySelector('[data-testid="matrix-info"]')?.textContent ?? ""), null, { timeout: 10000 });
  // Going down a level keeps the window.
  t = await drawnAt(page);
  asked = requestMade(page, (r) => matrixAt(r) && r.url().includes("level=rack"));
  await clickCell(page, g, DC, DC);
  await page.waitForURL((u) => u.hash.startsWith(`#/dc/${encodeURIComponent(DC)}?`));
  await asked;
  await heatmap(page, t);
  q = hashParams(page);
  assert(q.get("range") === "custom" && Number(q.get("from")) === F && Number(q.get("to")) === T, `rack view lost the window: ${page.url()}`);
  assert((await range.inputValue()) === "custom", "range control in the rack view");
});

test("change a ratio: validation error, then the pinglists change", async (page) => {
  const before = await pinglistEntries(DC);
  const original = (await api(`/api/v1/dcs/${encodeURIComponent(DC)}`)).server_ratio;
  await page.goto(`${BASE}/#/config/dcs/${encodeURIComponent(DC)}`);
  const ratio = page.locator('input[name="server_ratio"]');
  await ratio.waitFor();
  await ratio.fill("2");
  await page.click('[data-testid="save"]');
  await maybeToken(page);
  const err = page.locator('[data-field="server_ratio"] .field-error');
  await err.waitFor({ state: "visible", timeout: 10000 });
  assert((await err.textContent()).length > 0, "no validation error next to server_ratio");
  await page.screenshot({ path: path.join(ARTIFACTS, "ratio-validation.png") });
  const next = original > 0.5 ? 0.5 : 1;
  await ratio.fill(String(next));
  await page.click('[data-testid="save"]');
  await page.waitForURL((u) => u.hash === "#/config/dcs");
  let after = before;
  for (let i = 0; i < 30 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 500));
    after = await pinglistEntries(DC);
  }
  assert(after !== before, `pinglist entries of ${DC} did not change (${before})`);
  await page.goto(`${BASE}/#/agents?dc=${encodeURIComponent(DC)}`);
  await page.waitForSelector('[data-testid="agents-table"]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="pinglist-entries"]').length > 0);
  const shown = await entriesShown(page);
  assert(shown > 0 || after === 0, "agents page shows no pinglist entries");
  await page.screenshot({ path: path.join(ARTIFACTS, "ratio-agents.png") });
  await api(`/api/v1/dcs/${encodeURIComponent(DC)}`, {
    method: "PATCH",
    headers: writeHeaders,
    body: JSON.stringify({ server_ratio: original }),
  });
});

test("probe rules: a rule made in the form (field error first) changes the pinglists; delete", async (page) => {
  const e = encodeURIComponent;
  const name = `ui-rule-${Date.now() % 100000}`;
  const dc = await api(`/api/v1/dcs/${e(DC)}`);
  const probe = dc.probes.find((p) => p.protocol === "tcp") ?? dc.probes.find((p) => p.protocol !== "icmp");
  assert(probe !== undefined, `${DC} has no TCP/UDP/HTTP probe: ${JSON.stringify(dc.probes)}`);
  const before = await pinglistEntries(DC);
  const v0 = await pinglistVersions(DC);
  // A server of the DC with a rack peer: its intra-rack peers will be probed with `probe` only.
  const lists = (await api(`/api/v1/pinglists?dc=${e(DC)}&limit=10000`)).items;
  const src = lists.find((x) => x.chosen && x.entries > 0 && lists.some((y) => y.rack === x.rack && y.server !== x.server && y.chosen));
  assert(src !== undefined, `no server of ${DC} with a rack peer`);
  const pl0 = await pinglistOf(src.server);
  const intraRack = (pl) => pl.peers.filter((p) => p.level === "intra-rack");
  if (pl0 !== null) assert(intraRack(pl0).length > 0, `${src.server} probes no rack peer`);
  try {
    await page.goto(`${BASE}/#/config/rules`);
    await page.waitForSelector("table.grid");
    await page.click('a:has-text("+ new rule")');
    await page.locator('input[name="name"]').fill(name);
    await page.selectOption('select[name="level"]', "intra-rack");
    await page.locator('input[name="src_dc"]').fill(DC);
    await page.locator('input[name="dst_dc"]').fill("*");
    await page.selectOption('select[name="action"]', "replace");
    await page.click('[data-field="probes"] button:has-text("+ probe")');
    const row = page.locator('[data-field="probes[0]"]');
    await row.locator('select[aria-label="protocol"]').selectOption(probe.protocol);
    await row.locator('input[aria-label="port"]').fill("0");
    await page.click('[data-testid="save"]');
    const err = page.locator('[data-field="probes[0].port"] .field-error');
    await tokenBefore(page, err);
    await err.waitFor({ state: "visible", timeout: 10000 });
    assert((await err.textContent()).length > 0, "no validation error next to the probe's port");
    assert((await page.locator(".field-error:not(:empty)").count()) === 1, "errors shown next to other fields too");
    assert((await fetch(`${BASE}/api/v1/rules/${e(name)}`)).status === 404, "a refused rule was stored");
    await page.screenshot({ path: path.join(ARTIFACTS, "probe-rule-validation.png") });
    await row.locator('input[aria-label="port"]').fill(String(probe.port));
    await page.click('[data-testid="save"]');
    await page.waitForURL((u) => u.hash === "#/config/rules", { timeout: 10000 });
    const listed = page.locator("table.grid tr", { has: page.locator(`a:text-is("${name}")`) });
    await listed.waitFor({ timeout: 10000 });
    const cells = await listed.locator("td").allTextContents();
    assert(cells[1] === "intra-rack" && cells[2] === DC && cells[5] === "replace" && cells[6] === `${probe.protocol}:${probe.port}`, `rule row: ${cells}`);
    const stored = await api(`/api/v1/rules/${e(name)}`);
    assert(stored.level === "intra-rack" && stored.src_dc === DC && stored.dst_dc === "*" && stored.action === "replace" &&
      stored.probes.length === 1 && stored.probes[0].protocol === probe.protocol && stored.probes[0].port === probe.port,
      `stored rule differs from the form: ${JSON.stringify(stored)}`);
    // The DC's pinglists are regenerated (a version changes exactly when the content does).
    await until(`pinglist versions of ${DC} after the rule`, async () => {
      const v = await pinglistVersions(DC);
      return [...v].some(([s, x]) => v0.get(s) !== x) || `unchanged: ${JSON.stringify([...v])}`;
    });
    if (pl0 !== null) {
      // The real server: the rack peers are probed with that probe only, so fewer entries.
      await until(`${src.server}'s rack peers probed with ${probe.protocol}:${probe.port} only`, async () => {
        const peers = intraRack(await pinglistOf(src.server));
        return (peers.length > 0 && peers.every((p) => p.proto === probe.protocol && p.port === probe.port)) || JSON.stringify(peers);
      });
      const during = await pinglistEntries(DC);
      const kinds = new Set(intraRack(pl0).map((p) => `${p.proto}:${p.port}`)).size;
      if (kinds > 1) assert(during < before, `pinglist entries of ${DC}: ${before} before the rule, ${during} with it`);
      console.log(`    ${DC}: ${before} pinglist entries, ${during} with the rule (${kinds} probe kinds in a rack → 1)`);
    } else {
      console.log("    no per-server pinglists on this server: pinglist versions checked only");
    }
    // Delete it through the UI.
    await page.goto(`${BASE}/#/config/rules/${e(name)}`);
    await page.locator('input[name="name"]').waitFor();
    await page.click('button:has-text("Delete")');
    await page.click('[data-testid="confirm-ok"]');
    await page.waitForURL((u) => u.hash === "#/config/rules", { timeout: 10000 });
    await page.waitForSelector("table.grid");
    assert((await listed.count()) === 0, `${name} still listed after delete`);
    assert((await fetch(`${BASE}/api/v1/rules/${e(name)}`)).status === 404, `${name} still in the API after delete`);
    assert(!(await api("/api/v1/rules?limit=10000")).items.some((r) => r.name === name), `${name} still in GET /api/v1/rules`);
    await until(`pinglist entries of ${DC} back to ${before}`, async () => {
      const n = await pinglistEntries(DC);
      return n === before || `${n}`;
    });
    if (pl0 !== null) {
      await until(`${src.server}'s pinglist back as before`, async () => {
        const pl = await pinglistOf(src.server);
        return JSON.stringify(intraRack(pl)) === JSON.stringify(intraRack(pl0)) || JSON.stringify(intraRack(pl));
      });
    }
  } finally {
    await fetch(`${BASE}/api/v1/rules/${e(name)}`, { method: "DELETE", headers: writeHeaders }).catch(() => {});
  }
});

test("stop and resume probing: banner on every page", async (page) => {
  await page.goto(`${BASE}/#/dc`);
  await heatmap(page);
  await page.click('[data-testid="stop-all"]');
  await page.click('[data-testid="confirm-ok"]');
  await maybeToken(page);
  const banner = page.locator('[data-testid="stopped-banner"]');
  await banner.waitFor({ state: "visible", timeout: 10000 });
  assert((await api("/api/v1/status")).stopped === true, "server does not report stopped");
  await page.goto(`${BASE}/#/agents`);
  await banner.waitFor({ state: "visible", timeout: 15000 });
  await page.screenshot({ path: path.join(ARTIFACTS, "stopped-banner.png") });
  await page.click('[data-testid="banner-resume"]');
  await banner.waitFor({ state: "hidden", timeout: 10000 });
  assert((await api("/api/v1/status")).stopped === false, "server still reports stopped");
});

test("alert rules: a rule made in the form (field error first) fires, shows, links; delete", async (page) => {
  const name = `ui-p50-low-${Date.now() % 100000}`;
  await page.goto(`${BASE}/#/config/alert-rules`);
  await page.click('[data-testid="new-alert-rule"]');
  await page.locator('input[name="name"]').fill(name);
  await page.selectOption('select[name="scope"]', "dc");
  await page.selectOption('select[name="metric"]', "p50");
  await page.locator('input[name="threshold"]').fill("0.001"); // 1 µs: every loopback probe is above
  await page.locator('input[name="for_s"]').fill("0");
  await page.locator('input[name="min_samples"]').fill("10");
  await page.locator('input[name="min_events"]').fill("1");
  await page.locator('input[name="window_s"]').fill("100000"); // beyond the analyzer's horizon
  await page.click('[data-testid="save"]');
  await maybeToken(page);
  const err = page.locator('[data-field="window_s"] .field-error');
  await err.waitFor({ state: "visible", timeout: 10000 });
  assert((await err.textContent()).length > 0, "no validation error next to window_s");
  await page.locator('input[name="window_s"]').fill("10");
  await page.click('[data-testid="save"]');
  await page.waitForURL((u) => u.hash === "#/config/alert-rules");
  await page.waitForSelector(`tr[data-alert-rule="${name}"]`);
  const stored = (await api("/api/v1/alert-rules")).rules.find((r) => r.name === name);
  assert(stored !== undefined, `${name} not in GET /api/v1/alert-rules`);
  assert(stored.metric === "p50" && stored.threshold === 0.001 && stored.scope === "dc" && stored.window_s === 10,
    `stored rule differs from the form: ${JSON.stringify(stored)}`);
  // It fires on the real mesh (loopback P50 is tens of µs); the analyzer evaluates every 2 s.
  await page.goto(`${BASE}/#/alerts`);
  const card = page.locator(`[data-testid="alert"][data-rule="${name}"]`).first();
  await card.waitFor({ state: "visible", timeout: 60000 });
  const text = await card.textContent();
  assert(/firing|pending/.test(text) && text.includes("p50"), `alert card: ${text}`);
  const apiAlert = (await api("/api/v1/alerts?state=active")).alerts.find((a) => a.rule === name);
  assert(apiAlert !== undefined, "the UI shows an alert the API does not have");
  assert(text.includes(apiAlert.labels.dc), `alert card does not name its DC ${apiAlert.labels.dc}`);
  await page.screenshot({ path: path.join(ARTIFACTS, "alert-rule-firing.png") });
  // Its link opens the DC's rack heatmap, with the rule's metric.
  const t = await drawnAt(page);
  await card.locator('[data-testid="alert-link"]').click();
  await page.waitForURL((u) => u.hash.startsWith(`#/dc/${encodeURIComponent(apiAlert.labels.dc)}?`) && u.hash.includes("metric=p50"));
  await heatmap(page, t);
  // Delete it through the UI: gone from the API, its alert resolves.
  await page.goto(`${BASE}/#/config/alert-rules/${encodeURIComponent(name)}`);
  await page.click('button:has-text("Delete")');
  await page.click('[data-testid="confirm-ok"]');
  await page.waitForURL((u) => u.hash === "#/config/alert-rules");
  assert(!(await api("/api/v1/alert-rules")).rules.some((r) => r.name === name), `${name} still in the API after delete`);
});

test("alerts: a real fault's alert with its verdict, evidence and link", async (page) => {
  await page.goto(`${BASE}/#/alerts`);
  const want = DOWN !== "" ? `server:${DOWN}` : "";
  const card = page.locator('[data-testid="alert"]', {
    has: page.locator('[data-testid="verdict"]', want !== "" ? { hasText: want } : {}),
  }).first();
  await card.waitFor({ state: "visible", timeout: 60000 });
  const text = await card.textContent();
  assert(/firing|pending/.test(text), `not an active alert: ${text}`);
  const evidence = await card.locator('[data-testid="evidence"] li').allTextContents();
  assert(evidence.length > 0, "verdict without evidence");
  const verdicts = (await api("/api/v1/verdicts")).verdicts;
  const v = verdicts.find((x) => text.includes(x.component));
  assert(v !== undefined, `the card names no verdict of the API: ${text}`);
  assert(evidence.some((e) => Object.keys(v.evidence).some((k) => e.startsWith(k.replace(/_/g, " ")))), `evidence shown (${evidence}) is not the verdict's (${JSON.stringify(v.evidence)})`);
  if (DOWN !== "") assert(v.kind === "server_down", `verdict on ${DOWN} is ${v.kind}`);
  await page.screenshot({ path: path.join(ARTIFACTS, "alert-verdict.png") });
  const href = await card.locator('[data-testid="alert-link"]').getAttribute("href");
  await card.locator('[data-testid="alert-link"]').click();
  await page.waitForURL((u) => u.hash === href);
  // server:<name> opens that server's history
  if (DOWN !== "") assert(href.startsWith("#/history") && href.includes(`src=${encodeURIComponent(DOWN)}`), `link ${href}`);
  if (href.startsWith("#/history")) await page.waitForSelector('[data-testid="chart-latency"] .uplot', { timeout: 20000 });
  else await heatmap(page);
}, "fault");

test("agents: the stopped agent is shown silent, the others alive", async (page) => {
  const servers = (await api("/api/v1/servers?limit=1000")).items;
  const down = DOWN !== "" ? DOWN : servers.find((s) => !s.alive)?.name;
  assert(down !== undefined, "no silent server to look for");
  await page.goto(`${BASE}/#/agents`);
  await page.waitForSelector('[data-testid="agents-table"]');
  const row = page.locator(`tr[data-server="${down}"]`);
  await row.locator(".dot-bad").waitFor({ timeout: 30000 });
  const alive = servers.filter((s) => s.alive && s.name !== down).slice(0, 3);
  for (const s of alive) {
    await page.locator(`tr[data-server="${s.name}"] .dot-ok`).waitFor({ timeout: 10000 });
    const cells = await page.locator(`tr[data-server="${s.name}"] td`).allTextContents();
    assert(cells[4] === (s.agent_version || "–"), `version of ${s.name}: ${cells[4]} vs ${s.agent_version}`);
    assert(/ago/.test(cells[5]), `last heartbeat of ${s.name}: ${cells[5]}`);
  }
}, "fault");

test("every page at 1280×800 and 390 wide (screenshots)", async (page) => {
  const racks = (await api(`/api/v1/dcs/${encodeURIComponent(DC)}/racks?limit=1000`)).items.map((r) => r.name);
  const servers = (await api(`/api/v1/servers?dc=${encodeURIComponent(DC)}&limit=1000`)).items;
  const rules = (await api("/api/v1/alert-rules")).rules;
  const e = encodeURIComponent;
  const pages = [
    ["overview", "#/dc", ".hm[data-drawn]"],
    ["racks", `#/dc/${e(DC)}`, ".hm[data-drawn]"],
    ["servers", `#/dc/${e(DC)}/rack/${e(racks[0])}/${e(racks[1] ?? racks[0])}`, ".hm[data-drawn]"],
    ["dc-servers", `#/dc/${e(DC)}/servers?sort=rack`, ".hm[data-drawn]"],
    ["history", `#/history?scope=pair&src=${e(servers[0].name)}&dst=${e(servers[1].name)}&dc=${e(DC)}`, '[data-testid="chart-latency"] .uplot'],
    ["alerts", "#/alerts", ".alerts h2"],
    ["agents", "#/agents", '[data-testid="agents-table"]'],
    ["config-dcs", "#/config/dcs", "table.grid"],
    ["config-dc", `#/config/dcs/${e(DC)}`, 'input[name="server_ratio"]'],
    ["config-racks", `#/config/racks?dc=${e(DC)}`, "table.grid"],
    ["config-servers", `#/config/servers?dc=${e(DC)}`, "table.grid"],
    ["config-rules", "#/config/rules", "table.grid"],
    ["config-alert-rules", "#/config/alert-rules", "table.grid"],
    ["config-alert-rule", `#/config/alert-rules/${e(rules[0].name)}`, 'input[name="threshold"]'],
  ];
  const wide = [];
  for (const [width, height] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width, height });
    for (const [name, hash, ready] of pages) {
      await page.goto(`${BASE}/${hash}`);
      await page.waitForSelector(ready, { timeout: 20000 });
      await page.screenshot({ path: path.join(ARTIFACTS, `page-${name}-${width}.png`) });
      const sw = await page.evaluate(() => document.documentElement.scrollWidth);
      if (sw > width + 10) wide.push(`${name} at ${width}: ${sw} px`);
    }
  }
  assert(wide.length === 0, `pages scroll sideways: ${wide.join(", ")}`);
}, "fault");

test("configuration forms: create a DC, a rack, a server; stop and resume that DC; delete", async (page) => {
  const tag = `ui${Date.now() % 100000}`;
  const [dc, rack, server] = [`${tag}-dc`, `${tag}-r1`, `${tag}-s1`];
  const e = encodeURIComponent;
  const saved = async (hash) => {
    await page.click('[data-testid="save"]');
    await maybeToken(page);
    await page.waitForURL((u) => u.hash === hash, { timeout: 10000 });
  };
  try {
    // DC: an interval below the floor is refused next to its field, then accepted.
    await page.goto(`${BASE}/#/config/dcs`);
    await page.click('a:has-text("+ new DC")');
    await page.locator('input[name="name"]').fill(dc);
    await page.locator('input[name="interval_ms"]').fill("10");
    await page.locator('input[name="ipv6"]').uncheck();
    await page.click('[data-testid="save"]');
    await maybeToken(page);
    const err = page.locator('[data-field="interval_ms"] .field-error');
    await err.waitFor({ state: "visible", timeout: 10000 });
    await page.locator('input[name="interval_ms"]').fill("10000");
    await saved("#/config/dcs");
    await page.waitForSelector(`[data-testid="edit-dc-${dc}"]`);
    const d = await api(`/api/v1/dcs/${e(dc)}`);
    assert(d.interval_ms === 10000 && d.ipv6 === false && d.mode === "rack", `DC as stored: ${JSON.stringify(d)}`);
    // A rack, then a server in it.
    await page.goto(`${BASE}/#/config/racks?dc=${e(dc)}`);
    await page.click('a:has-text("+ new rack/switch")');
    await page.locator('input[name="name"]').fill(rack);
    await saved(`#/config/racks?dc=${e(dc)}`);
    await page.goto(`${BASE}/#/config/servers?dc=${e(dc)}`);
    await page.click('a:has-text("+ new server")');
    await page.locator('input[name="name"]').fill(server);
    await page.locator('input[name="dc"]').fill(dc);
    await page.locator('input[name="rack"]').fill(rack);
    await page.locator('textarea[name="addresses"]').fill("not-an-address");
    await page.click('[data-testid="save"]');
    await page.locator('[data-field="addresses"] .field-error').waitFor({ state: "visible", timeout: 10000 });
    await page.locator('textarea[name="addresses"]').fill("127.0.99.1");
    await saved(`#/config/servers?dc=${e(dc)}`);
    const srv = await api(`/api/v1/servers/${e(server)}`);
    assert(srv.rack === rack && srv.addresses[0] === "127.0.99.1", `server as stored: ${JSON.stringify(srv)}`);
    // Stop only this DC from its page: its server's pinglist says stopped; the others probe on.
    await page.goto(`${BASE}/#/config/dcs/${e(dc)}`);
    await page.click('[data-testid="stop-dc"]');
    await page.click('[data-testid="confirm-ok"]');
    await maybeToken(page);
    await page.waitForSelector(`[data-testid="stop-dc"]:has-text("resume ${dc}")`, { timeout: 10000 });
    const st = await api("/api/v1/status");
    assert(st.stopped === false && st.stopped_dcs.includes(dc), `status after a DC stop: ${JSON.stringify(st)}`);
    const pl = await api(`/api/v1/pinglist/${e(server)}`, { headers: { Accept: "application/json" } });
    assert(pl.stopped === true, `pinglist of ${server} not stopped: ${JSON.stringify(pl).slice(0, 200)}`);
    await page.click('[data-testid="stop-dc"]');
    await page.waitForSelector(`[data-testid="stop-dc"]:has-text("stop probing in ${dc}")`, { timeout: 10000 });
    assert(!(await api("/api/v1/status")).stopped_dcs.includes(dc), "DC still stopped after resume");
    await page.screenshot({ path: path.join(ARTIFACTS, "config-forms.png") });
    // Delete the DC through its form (it takes its racks and servers along).
    await page.click('button:has-text("Delete")');
    await page.click('[data-testid="confirm-ok"]');
    await page.waitForURL((u) => u.hash === "#/config/dcs", { timeout: 10000 });
    const gone = await fetch(`${BASE}/api/v1/dcs/${e(dc)}`);
    assert(gone.status === 404, `DC after delete: HTTP ${gone.status}`);
    const gone2 = await fetch(`${BASE}/api/v1/servers/${e(server)}`);
    assert(gone2.status === 404, `server after its DC's delete: HTTP ${gone2.status}`);
  } finally {
    await fetch(`${BASE}/api/v1/dcs/${e(dc)}`, { method: "DELETE", headers: writeHeaders }).catch(() => {});
  }
}, "fault");

test("search a server jumps to its rack", async (page) => {
  const s = (await api(`/api/v1/servers?dc=${encodeURIComponent(DC)}&limit=1`)).items[0];
  assert(s !== undefined, "no server");
  await page.goto(`${BASE}/#/dc`);
  await heatmap(page);
  await page.fill('[data-testid="search"]', s.addresses[0] ?? s.name);
  await page.press('[data-testid="search"]', "Enter");
  await page.waitForURL((u) => u.hash.includes("/rack/") && u.hash.includes(`hl=${encodeURIComponent(s.name)}`));
  const g = await heatmap(page);
  assert(g.rows.includes(s.name), `searched server ${s.name} not in the rack view`);
});

test("phone (390 wide): overview and rack view usable", async (page) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${BASE}/#/dc/${encodeURIComponent(DC)}`);
  const g = await heatmap(page);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert(width <= 400, `page scrolls sideways on a phone (${width}px)`);
  assert(g.cell >= 4, "cells too small to tap");
});

if (dcs.some((d) => d.name === "big")) {
  test("1,000 × 1,000 server matrix renders without freezing", async (page) => {
    await page.goto(`${BASE}/#/dc/big/rack/big-r1/big-r2?sort=worst`);
    const g = await heatmap(page);
    assert(g.rows === 1000 && g.cols === 1000, `expected 1000×1000, got ${g.rows}×${g.cols}`);
    const timing = await page.evaluate(async () => {
      const el = document.querySelector('[data-testid="heatmap-overlay"]');
      const r = el.getBoundingClientRect();
      const t0 = performance.now();
      for (let i = 0; i < 50; i++) {
        el.dispatchEvent(new MouseEvent("mousemove", { clientX: r.left + 10 + i * 7, clientY: r.top + 10 + i * 5, bubbles: true }));
      }
      const hover = (performance.now() - t0) / 50;
      const t1 = performance.now();
      document.querySelector('[data-testid="sel-sort"]').value = "name";
      document.querySelector('[data-testid="sel-sort"]').dispatchEvent(new Event("change"));
      return { hover, t1 };
    });
    await page.waitForFunction((t) => Number(document.querySelector(".hm")?.dataset.drawn ?? 0) > t, timing.t1, { timeout: 30000 });
    const redraw = (await drawnAt(page)) - timing.t1;
    console.log(`    hover ${timing.hover.toFixed(2)} ms/event; reload+sort+draw ${redraw.toFixed(0)} ms`);
    assert(timing.hover < 16, `hover too slow: ${timing.hover} ms`);
  });
}

// ---- runner ---------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: BROWSER,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
// launch() gives the browser a fresh temporary --user-data-dir of its own and removes it on close.
let passed = 0;
let failed = 0;
const only = process.env.E2E_ONLY ?? "";
const group = process.env.E2E_GROUP ?? "";
for (const { name, fn, group: g } of tests) {
  if (only !== "" && !name.includes(only)) continue;
  if (group !== "" && g !== group) continue;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const shot = path.join(ARTIFACTS, `${name.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "").toLowerCase()}.png`);
  const t0 = Date.now();
  try {
    await fn(page);
    if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
    await page.screenshot({ path: shot });
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    await page.screenshot({ path: shot }).catch(() => undefined);
    console.log(`FAIL ${name}: ${e.message.split("\n")[0]}`);
  }
  await context.close();
}
await browser.close();
console.log(`screenshots in ${ARTIFACTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
