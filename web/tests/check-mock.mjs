// Compares the mock server's responses with the real server's, shape by shape, and with the
// capture the unit tests use (tests/fixtures/real-api.json).
//
//   node tests/check-mock.mjs --real http://127.0.0.1:9000 [--out real-api.json] [--require-alerts]
//
// --out            writes the real server's capture there (to refresh the fixture)
// --require-alerts fails unless the real server has at least one alert and one verdict (else the
//                  alert shapes would go unchecked)
// Exits 1 on any difference, printing each.

import fs from "node:fs";
import { captureAll, diffCaptures } from "./api-shapes.mjs";
import { loadRealCapture } from "./fixtures/real-api.mjs";
import { mockFetch } from "./mock-server.mjs";

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const base = (arg("real") ?? "").replace(/\/$/, "");
if (base === "") {
  console.error("usage: check-mock.mjs --real URL [--out FILE] [--require-alerts]");
  process.exit(2);
}

const real = await captureAll(async (p) => {
  const res = await fetch(`${base}${p}`, { headers: { Accept: "application/json" } });
  const text = await res.text();
  return { status: res.status, json: text === "" ? null : JSON.parse(text) };
});
const out = arg("out");
if (out !== undefined) fs.writeFileSync(out, `${JSON.stringify(real, null, 1)}\n`);

const problems = [];
if (args.includes("--require-alerts")) {
  if (!(real.alerts.json?.alerts?.length > 0)) problems.push("the real server has no alert: alert shapes unchecked");
  if (!(real.verdicts.json?.verdicts?.length > 0)) problems.push("the real server has no verdict: verdict shapes unchecked");
}
const mock = await captureAll((p) => mockFetch("GET", p));
for (const d of diffCaptures(mock, real)) problems.push(`mock vs real: ${d}`);
for (const d of diffCaptures(loadRealCapture(), real, ["fixture", "the real server"])) {
  problems.push(`tests/fixtures/real-api.json vs real: ${d} (refresh the fixture${out ? ` from ${out}` : ""})`);
}
for (const p of problems) console.log(`DIFF ${p}`);
console.log(`${Object.keys(real).length} responses compared, ${problems.length} differences`);
process.exit(problems.length > 0 ? 1 : 0);
