import { describe, expect, it } from "vitest";
import { DEFAULT_QUERY, formatHash, parseHash, windowOf, type Route } from "../../src/route";

const routes: Route[] = [
  { view: { kind: "dcs" }, q: { ...DEFAULT_QUERY } },
  { view: { kind: "dcs" }, q: { ...DEFAULT_QUERY, metric: "loss", protocol: "udp", range: "live" } },
  { view: { kind: "racks", dc: "dc1" }, q: { ...DEFAULT_QUERY, metric: "p999", range: "24h", sort: "worst" } },
  { view: { kind: "servers", dc: "dc 1/x", srcRack: "r1", dstRack: "r2" }, q: { ...DEFAULT_QUERY, hl: "srv-1" } },
  { view: { kind: "servers", dc: "dc1", srcRack: "r1", dstRack: "r1" }, q: { ...DEFAULT_QUERY, range: "custom", from: 1000, to: 2000 } },
  { view: { kind: "dcServers", dc: "big" }, q: { ...DEFAULT_QUERY, sort: "rack" } },
  { view: { kind: "history", scope: "pair", src: "a", dst: "b", dc: "dc1" }, q: { ...DEFAULT_QUERY, range: "7d" } },
  { view: { kind: "history", scope: "server", src: "a&b", dst: "", dc: "" }, q: { ...DEFAULT_QUERY } },
  { view: { kind: "alerts" }, q: { ...DEFAULT_QUERY } },
  { view: { kind: "agents", dc: "dc2" }, q: { ...DEFAULT_QUERY } },
  { view: { kind: "config", section: "racks", name: "r1", dc: "dc1" }, q: { ...DEFAULT_QUERY } },
  { view: { kind: "config", section: "dcs", name: "+", dc: "" }, q: { ...DEFAULT_QUERY } },
];

describe("hash routes", () => {
  it("round-trip: parse(format(route)) == route", () => {
    for (const r of routes) expect(parseHash(formatHash(r))).toEqual(r);
  });
  it("round-trip: format(parse(hash)) == hash for canonical hashes", () => {
    for (const h of [
      "#/dc",
      "#/dc?metric=loss&range=live",
      "#/dc/dc1?metric=p50&protocol=udp",
      "#/dc/dc1/rack/r1/r2?range=24h",
      "#/dc/dc1/servers?sort=rack",
      "#/history?scope=rack_pair&src=r1&dst=r2&dc=dc1",
      "#/alerts",
      "#/config/rules/intra-dc",
    ]) {
      expect(formatHash(parseHash(h))).toBe(h);
    }
  });
  it("reads the documented examples", () => {
    expect(parseHash("#/dc?metric=p99&range=1h")).toEqual({ view: { kind: "dcs" }, q: DEFAULT_QUERY });
    expect(parseHash("#/dc/dc1/rack/r1/r2").view).toEqual({ kind: "servers", dc: "dc1", srcRack: "r1", dstRack: "r2" });
    expect(parseHash("#/dc/dc1/rack/r1").view).toEqual({ kind: "servers", dc: "dc1", srcRack: "r1", dstRack: "r1" });
  });
  it("falls back to defaults on junk", () => {
    expect(parseHash("").view).toEqual({ kind: "dcs" });
    expect(parseHash("#/nowhere?metric=bogus&range=forever").q).toEqual(DEFAULT_QUERY);
    expect(parseHash("#/dc?range=custom&from=5&to=1").q.range).toBe(DEFAULT_QUERY.range);
    expect(parseHash("#/history?scope=pair").view).toEqual({ kind: "dcs" });
  });
  it("computes windows", () => {
    expect(windowOf({ ...DEFAULT_QUERY, range: "1h" }, 10_000)).toEqual({ from: 6400, to: 10_000 });
    expect(windowOf({ ...DEFAULT_QUERY, range: "live" }, 10_000)).toEqual({ from: 9700, to: 10_000 });
    expect(windowOf({ ...DEFAULT_QUERY, range: "custom", from: 1, to: 2 }, 10_000)).toEqual({ from: 1, to: 2 });
  });
});

describe("history step", () => {
  it("is whole minutes, about 300 points", async () => {
    const { stepFor } = await import("../../src/views/history");
    expect(stepFor(0, 300)).toBe(60);
    expect(stepFor(0, 3600)).toBe(60);
    expect(stepFor(0, 86400)).toBe(300);
    expect(stepFor(0, 7 * 86400) % 60).toBe(0);
  });
});
