#pragma once
/// A fault simulator for what-if studies and for measuring the analyzer: synthetic probe results
/// of a Clos fabric (DCs, spines, ToRs, servers; ECMP next hop chosen per flow by a hash of the
/// 5-tuple, a new source port per probe) probing along the real pinglist generator's plan, with
/// injected faults, fed through the Engine (and optionally the collector's aggregator) in
/// simulated time. Scenarios fork one warmed-up engine, so each starts from a full window of
/// healthy data.
///
/// Network model per TCP probe: up to three SYN attempts (at 0, 1 s, 3 s; the connect gives up at
/// 5 s = the agent's probe timeout); each attempt crosses the forward path, the SYN-ACK the
/// reverse path (its own ECMP hash). Healthy: lognormal RTT (median 150 us intra-rack, 250 us
/// intra-DC, P99 ~1.3 ms), rare 2-20 ms spikes (1e-4), 5e-6 loss per path crossing (1e-5 per
/// probe); inter-DC base RTT 2 ms + 3 ms per DC index apart. Agents upload every 5 s.

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analyze/engine.hpp"

namespace pingmesh::analyze::sim {

/// Shape of the simulated fabric.
struct FabricSpec {
  int dcs = 4;
  int racks_per_dc = 64;
  int servers_per_rack = 40;
  int spines_per_dc = 4;
  int inter_dc_servers = 16;  ///< servers per DC in inter-DC probing (the DC's setting)
};

/// Faults the simulator injects.
enum class FaultKind : uint8_t {
  kServerDown = 0,  ///< host down: no uploads, probes to it time out
  kTorDown,         ///< every server under the ToR unreachable and silent
  kTorBlackHole,    ///< the ToR drops every packet of a fraction of (src, dst) pairs
  kSpineDrop,       ///< one spine drops a fraction of the packets crossing it
  kUplinkDelay,     ///< +delay on the rack's uplink (once per round trip through it)
  kInterDc,         ///< the link between two DCs: +delay and/or loss
};
/// Number of fault kinds.
inline constexpr int kFaultKinds = 6;
std::string_view to_string(FaultKind k);  ///< "server_down", "tor_down", ...
std::optional<FaultKind> parse_fault_kind(std::string_view s);

/// One injected fault; which fields matter depends on the kind.
struct Fault {
  FaultKind kind = FaultKind::kServerDown;
  uint32_t dc = 0, rack = 0, server = 0, spine = 0, peer_dc = 0;  ///< indices in the fabric
  double fraction = 0;  ///< black hole: fraction of pairs; spine/inter-DC: drop per crossing
  uint32_t delay_us = 0;
  int64_t start_ms = 0;  ///< simulated time the fault starts
};

/// What to simulate and how to measure it.
struct SimOptions {
  FabricSpec fabric;
  int scenarios = 1000;
  double double_fraction = 0.5;  ///< share of scenarios with two faults (in different racks)
  int no_fault_scenarios = 20;   ///< extra scenarios with no fault (false alarms)
  std::vector<FaultKind> kinds;  ///< kinds drawn from; empty = all
  int64_t warmup_ms = 60000;
  int64_t horizon_ms = 45000;  ///< simulated after the fault starts
  int64_t evaluate_ms = 2000;  ///< evaluation period
  int64_t probe_interval_ms = 10000;
  int64_t batch_ms = 5000;
  uint64_t seed = 1;
  int threads = 2;
  bool with_collector = false;  ///< also feed every batch to a collector::Aggregator
  /// Traceroute rounds (docs/ANALYZER.md, "Narrowing a spine"): while a DC has a fabric_loss
  /// verdict, the sources of a few cross-rack pairs trace their target from fixed source ports;
  /// the results reach the engine this long after the verdict (the agents' poll, the trace).
  bool traces = true;
  int64_t trace_delay_ms = 10000;
  TraceOptions trace;
  EngineOptions engine;
};

/// What one scenario produced.
struct ScenarioResult {
  std::vector<Fault> faults;
  std::vector<std::string> expected;           ///< component ids of the faults
  std::map<std::string, int64_t> reported;     ///< fired verdict components -> ms after fault start
  std::map<std::string, std::string> kind_of;  ///< verdict kind of each reported component
  std::vector<std::string> narrower;           ///< per fault: a finer correct component or ""
  int trace_rounds = 0;                        ///< traceroute rounds the engine received
  int rule_alerts = 0;                         ///< rule (SLA) alerts that fired
  uint64_t results = 0;                        ///< probe results produced
  uint64_t collector_accepted = 0, collector_rejected = 0;  ///< with_collector only
};

/// Aggregate figures.
struct SimReport {
  int scenarios = 0, single = 0, double_ = 0, no_fault = 0;
  uint64_t faults = 0, true_positives = 0, false_positives = 0, false_negatives = 0;
  uint64_t detected_within_30s = 0;
  double precision = 0, recall = 0, recall_30s = 0;
  double ttd_p50_s = 0, ttd_p95_s = 0, ttd_max_s = 0;  ///< fault start -> firing, detected ones
  int no_fault_false_alarms = 0;                       ///< alerts (any) fired in no-fault scenarios
  int warmup_alerts = 0;                               ///< alerts fired during the shared warm-up
  uint64_t results = 0;
  uint64_t collector_accepted = 0, collector_rejected = 0;  ///< with_collector (scenarios only)
  double wall_s = 0;
  uint32_t servers = 0;
  std::map<std::string, std::array<uint64_t, 4>> per_kind;  ///< kind -> faults, tp, <=30s, fp-in
  uint64_t spine_faults = 0, spine_named = 0;  ///< spine drops; of them narrowed to the spine
  double spine_named_p50_s = 0;                ///< fault start -> the spine's alert
  int trace_rounds = 0;
  std::vector<std::string> examples;  ///< a few misses and false positives, for the report
};

/// The report as JSON (for --json).
nlohmann::json to_json(const SimReport& r);
/// The report as text (what `pingmesh simulate` prints).
std::string format_report(const SimReport& r, const SimOptions& o);

/// Runs the study. `progress(done, total)` is called after each scenario (from worker threads,
/// serialized). Deterministic for a seed and thread count.
SimReport run(const SimOptions& options, const std::function<void(int, int)>& progress = nullptr);

/// The component id a correct verdict names for a fault.
std::string expected_component(const Fault& f, const FabricSpec& fabric);
/// A finer component that is also correct (a spine drop: "spine:<dc>/s<k>", once traceroutes
/// narrow it), or "".
std::string narrower_component(const Fault& f, const FabricSpec& fabric);

}  // namespace pingmesh::analyze::sim
