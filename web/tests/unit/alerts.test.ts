import { describe, expect, it } from "vitest";
import type { Alert, Verdict } from "../../src/api";
import { evidenceLines, metricOfAlert, sortAlerts, verdictIndex, viewOfLabels } from "../../src/views/alerts";

// Labels as the analyzer sets them (src/analyze/engine.cpp): rule instances per scope, and
// localized faults (kind, component, component_type, dc, peer_dc, rack, server).
describe("viewOfLabels: the view an alert links to", () => {
  it("rule scopes", () => {
    expect(viewOfLabels({ scope: "global", metric: "loss" })).toEqual({ kind: "dcs" });
    expect(viewOfLabels({ dc: "dc1", scope: "dc" })).toEqual({ kind: "racks", dc: "dc1" });
    expect(viewOfLabels({ src_dc: "dc1", dst_dc: "dc2", scope: "dc_pair" })).toEqual({
      kind: "history", scope: "dc_pair", src: "dc1", dst: "dc2", dc: "",
    });
    expect(viewOfLabels({ dc: "dc1", rack: "r1", scope: "rack" })).toEqual({ kind: "servers", dc: "dc1", srcRack: "r1", dstRack: "r1" });
    expect(viewOfLabels({ src_dc: "dc1", dst_dc: "dc1", src_rack: "r1", dst_rack: "r2", scope: "rack_pair" })).toEqual({
      kind: "servers", dc: "dc1", srcRack: "r1", dstRack: "r2",
    });
    expect(viewOfLabels({ dc: "dc1", rack: "r1", server: "s1", scope: "server" })).toEqual({
      kind: "history", scope: "server", src: "s1", dst: "", dc: "dc1",
    });
  });
  it("an inter-DC rack pair has no server matrix: its DC pair's history", () => {
    expect(viewOfLabels({ src_dc: "dc1", dst_dc: "dc2", src_rack: "r1", dst_rack: "x9" })).toEqual({
      kind: "history", scope: "dc_pair", src: "dc1", dst: "dc2", dc: "",
    });
  });
  it("localized faults", () => {
    expect(viewOfLabels({ kind: "server_down", component: "server:s1", component_type: "server", dc: "dc1", rack: "r1", server: "s1" }))
      .toEqual({ kind: "history", scope: "server", src: "s1", dst: "", dc: "dc1" });
    expect(viewOfLabels({ kind: "tor_black_hole", component: "rack:dc1/r1", component_type: "rack", dc: "dc1", rack: "r1" }))
      .toEqual({ kind: "servers", dc: "dc1", srcRack: "r1", dstRack: "r1" });
    expect(viewOfLabels({ kind: "inter_dc_link", component: "inter_dc:dc1~dc2", component_type: "inter_dc", dc: "dc1", peer_dc: "dc2" }))
      .toEqual({ kind: "history", scope: "dc_pair", src: "dc1", dst: "dc2", dc: "" });
    expect(viewOfLabels({ kind: "fabric_loss", component: "spine_layer:dc1", component_type: "spine_layer", dc: "dc1" }))
      .toEqual({ kind: "racks", dc: "dc1" });
  });
});

describe("metricOfAlert", () => {
  it("the rule's latency metric, loss otherwise; a fault's kind", () => {
    expect(metricOfAlert({ labels: { metric: "p50" } })).toBe("p50");
    expect(metricOfAlert({ labels: { metric: "p999" } })).toBe("p999");
    expect(metricOfAlert({ labels: { metric: "failure_rate" } })).toBe("loss");
    expect(metricOfAlert({ labels: { kind: "fabric_latency" } })).toBe("p99");
    expect(metricOfAlert({ labels: { kind: "server_down" } })).toBe("loss");
  });
});

const alert = (id: number, state: Alert["state"], since: number): Alert => ({
  id, rule: "r", fingerprint: `r|${id}`, scope: "dc", state, labels: {}, annotations: {}, active_since_ms: since,
  fired_ms: null, resolved_ms: null, updated_ms: since, value: null, threshold: 0, samples: 0, verdicts: [],
});

describe("sortAlerts", () => {
  it("firing, pending, resolved; newest first inside each", () => {
    const sorted = sortAlerts([alert(1, "resolved", 50), alert(2, "pending", 10), alert(3, "firing", 5), alert(4, "firing", 20)]);
    expect(sorted.map((a) => a.id)).toEqual([4, 3, 2, 1]);
  });
});

describe("evidenceLines", () => {
  it("an object as key: value lines, nested objects flattened", () => {
    expect(evidenceLines({ servers_known: 4, as_target: { failures: 31, lost: 0 }, note: "x" })).toEqual([
      "servers known: 4",
      "as target: failures 31, lost 0",
      "note: x",
    ]);
  });
  it("arrays and scalars", () => {
    expect(evidenceLines(["a", { b: 1 }])).toEqual(["a", '{"b":1}']);
    expect(evidenceLines({ pairs: [{ src: "a", dst: "b" }, { src: "c", dst: "d" }] })).toEqual(["pairs: src a, dst b; src c, dst d"]);
    expect(evidenceLines(null)).toEqual([]);
    expect(evidenceLines(3)).toEqual(["3"]);
  });
});

describe("verdictIndex", () => {
  const v = (kind: string, component: string, active: boolean, last: number): Verdict => ({
    kind, component_type: "server", component, dc: "dc1", confidence: 1, summary: "", evidence: {}, first_ms: 0, last_ms: last, active,
  });
  it("by kind|component and by component; active records win, then the newest", () => {
    const idx = verdictIndex([v("server_problem", "server:s1", false, 900), v("server_down", "server:s1", true, 500), v("server_down", "server:s2", false, 1)]);
    expect(idx.get("server:s1")?.kind).toBe("server_down");
    expect(idx.get("server_problem|server:s1")?.active).toBe(false);
    expect(idx.get("server_down|server:s2")?.last_ms).toBe(1);
  });
});
