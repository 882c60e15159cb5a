// The mock server (tests/mock-server.mjs) must answer in the real server's shapes: compared with
// responses captured from a real `pingmesh server` (tests/fixtures/real-api.json, written by the
// e2e_ui ctest, which also compares the mock with the live server).
import { describe, expect, it } from "vitest";
import type { Alert, AlertRule, Verdict } from "../../src/api";
import { viewOfLabels } from "../../src/views/alerts";
// @ts-expect-error plain ES module without types
import { captureAll, diffCaptures, diffShapes } from "../api-shapes.mjs";
// @ts-expect-error plain ES module without types
import { loadRealCapture } from "../fixtures/real-api.mjs";
// @ts-expect-error plain ES module without types
import { mockFetch } from "../mock-server.mjs";

type Capture = Record<string, { path: string; status: number; json: unknown }>;
const real = loadRealCapture() as Capture;

describe("diffShapes", () => {
  it("finds a member on one side only, and a type change", () => {
    expect(diffShapes({ a: 1, b: "x" }, { a: 1, b: "x" })).toEqual([]);
    expect(diffShapes({ items: [] }, { alerts: [] })).toEqual(["$.items: the real server has no such member", "$.alerts: missing in the mock"]);
    expect(diffShapes({ id: "a1" }, { id: 1 })).toEqual(["$.id: mock has string, the real server number"]);
  });
  it("merges array elements: optional members and nullable values", () => {
    // c in some real elements only: may be data-dependent (a verdict's peer_dc), not a difference
    expect(diffShapes({ v: [{ a: 1, b: null }] }, { v: [{ a: 2, b: 3 }, { a: 1, b: null, c: 1 }] })).toEqual([]);
    // c in every real element: the mock must have it
    expect(diffShapes({ v: [{ a: 1, b: null }] }, { v: [{ a: 2, b: 3, c: 1 }, { a: 1, b: null, c: 2 }] })).toEqual(["$.v[].c: missing in the mock"]);
    expect(diffShapes({ v: [{ a: "1" }] }, { v: [{ a: 2 }, { a: null }] })).toEqual(["$.v[].a: mock has string, the real server number"]);
    expect(diffShapes({ v: [{ a: 1 }] }, { v: [] })).toEqual([]);
  });
  it("maps (labels, evidence, ...) are compared as maps, not by their keys", () => {
    expect(diffShapes({ labels: { dc: "x" } }, { labels: { rack: "y" } })).toEqual([]);
    expect(diffShapes({ labels: "x" }, { labels: { rack: "y" } })).toEqual(["$.labels: mock has string, the real server map"]);
  });
});

describe("the mock answers in the real server's shapes", () => {
  it("the capture holds alerts and verdicts (else their shapes go unchecked)", () => {
    expect((real.alerts?.json as { alerts: Alert[] }).alerts.length).toBeGreaterThan(0);
    expect((real.verdicts?.json as { verdicts: Verdict[] }).verdicts.length).toBeGreaterThan(0);
    expect((real.alert_rules?.json as { rules: AlertRule[] }).rules.length).toBeGreaterThan(0);
  });
  it("every response the UI reads", async () => {
    const mock = (await captureAll((p: string) => mockFetch("GET", p))) as Capture;
    expect(Object.keys(mock).sort()).toEqual(Object.keys(real).sort());
    expect(diffCaptures(mock, real)).toEqual([]);
  });
  it("the real alerts link to a view of their DC", () => {
    for (const a of (real.alerts.json as { alerts: Alert[] }).alerts) {
      const v = viewOfLabels(a.labels);
      if (a.labels.dc !== undefined) expect(v.kind).not.toBe("dcs");
      expect(typeof a.annotations.summary).toBe("string");
      expect(Array.isArray(a.verdicts)).toBe(true);
    }
  });
});
