#pragma once
/// The analyzer's pure core: sliding windows fed by result batches, alert rules evaluated on
/// them, fault localization on a snapshot of them, and the alerts both produce. Time is passed
/// in; no I/O, no locks (the Analyzer shell locks); copyable, so the simulator can fork a
/// warmed-up engine into many scenarios.

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "analyze/alerts.hpp"
#include "analyze/localize.hpp"
#include "analyze/rules.hpp"
#include "analyze/trace.hpp"
#include "analyze/windows.hpp"

namespace pingmesh::analyze {

/// Configuration of the engine (windows, detectors, verdict alerts, history bounds).
struct EngineOptions {
  WindowOptions windows;
  LocalizeOptions localize;
  int64_t localize_window_ms = 30000;  ///< data the detectors look at
  int64_t verdict_for_ms = 0;          ///< a verdict is pending this long before it fires
  int64_t verdict_hold_ms = 20000;     ///< a verdict alert resolves this long after it vanished
  double baseline_tau_s = 600;         ///< time constant of the inter-DC median baseline
  collector::Protocol protocol = collector::Protocol::kTcp;  ///< protocol localized
  int64_t known_ms = 600000;  ///< a server not seen for longer is forgotten (unless expected)
  std::size_t max_alert_history = 10000;
  std::size_t max_verdict_history = 1000;
  bool run_detectors = true;  ///< run the detectors (and raise their alerts)
};

/// A verdict as tracked over time.
struct VerdictRecord {
  Verdict verdict;       ///< latest version
  int64_t first_ms = 0;  ///< first produced
  int64_t last_ms = 0;   ///< last produced
  bool active = false;   ///< produced by the last evaluation
};
/// The API form of a verdict record (a verdict plus first_ms, last_ms, active).
nlohmann::json to_json(const VerdictRecord& r);

/// Values of one exported series (pingmesh_* gauges), over localize_window_ms.
struct SeriesValue {
  LabelMap labels;  ///< scope, protocol and the scope's labels
  uint64_t probes = 0;
  uint64_t answered = 0;
  double loss = 0;                          ///< NaN when nothing counts towards loss
  double failure = 0;                       ///< NaN when no probes
  double p50_s = 0, p99_s = 0, p999_s = 0;  ///< NaN when no answers
};

/// The name an alert of a localized fault carries: "TorBlackHole" for tor_black_hole.
std::string alertname_of_kind(std::string_view kind);
/// Every verdict kind, in a fixed order.
const std::vector<std::string>& verdict_kinds();

/// Not thread-safe; the Analyzer locks around it.
class Engine {
 public:
  explicit Engine(EngineOptions options = {});

  /// Replaces the rules. Alerts of rules that disappear or are disabled resolve (events).
  void set_rules(std::vector<AlertRule> rules, int64_t now_ms, std::vector<AlertEvent>* events);
  const std::vector<AlertRule>& rules() const { return rules_; }
  /// Marks the servers of the topology as expected.
  void set_topology(const model::Topology& topology);

  /// Adds a batch that arrived at now_ms.
  ObserveCounts observe(const v1::ResultBatch& batch, int64_t now_ms) {
    ++generation_;
    return windows_.observe(batch, now_ms);
  }
  /// Puts back the alerts that were firing before a restart (AlertBook::restore), held for
  /// grace_ms while the windows fill again; those of rules that no longer exist (or are
  /// disabled) resolve at once (events).
  void restore_alerts(const std::vector<Alert>& active, uint64_t next_id, int64_t now_ms,
                      int64_t grace_ms, std::vector<AlertEvent>* events);
  /// Evaluates every rule and the detectors at now_ms; appends notified state changes.
  void evaluate(int64_t now_ms, std::vector<AlertEvent>* events);

  /// The detectors' input at now_ms (also used by tests and the simulator).
  Snapshot snapshot(int64_t now_ms) const;
  /// The exported series at now_ms (global, dc, dc_pair, rack).
  std::vector<SeriesValue> series(int64_t now_ms) const;

  const AlertBook& alerts() const { return book_; }
  /// Verdicts: the active ones, then ended ones newest first.
  std::vector<VerdictRecord> verdicts(bool active_only, int64_t since_ms) const;
  const Windows& windows() const { return windows_; }
  /// Traceroute results per DC (TraceCoordinator::traces): a fabric_loss verdict of a DC whose
  /// traces single out one spine becomes that spine's verdict (narrow_to_spine).
  void set_spine_traces(std::map<std::string, DcTraces> traces) {
    spine_traces_ = std::move(traces);
  }
  const EngineOptions& options() const { return options_; }

 private:
  void evaluate_rule(const AlertRule& rule, int64_t now_ms, std::vector<AlertEvent>* events);
  void evaluate_faults(int64_t now_ms, std::vector<AlertEvent>* events);
  const AggMap& sums(WLevel level, int64_t now_ms, int64_t window_ms, bool sketch) const;
  /// Seen (and first seen at least window_ms ago, so a new server gets a full window), and
  /// expected by the topology or seen within known_ms.
  bool known_for_rules(uint32_t server, int64_t now_ms, int64_t window_ms) const;

  EngineOptions options_;
  Windows windows_;
  AlertBook book_;
  std::vector<AlertRule> rules_;
  /// Per evaluation: sums already computed, by (level, window, sketch).
  mutable std::map<std::tuple<int, int64_t, bool>, AggMap> sums_;
  mutable int64_t sums_at_ms_ = -1;
  mutable uint64_t sums_generation_ = 0;
  uint64_t generation_ = 0;  ///< batches observed
  /// Inter-DC median baselines by (a, b) DC ids, a < b, and when they were last updated.
  std::map<std::pair<uint32_t, uint32_t>, std::pair<double, int64_t>> baselines_;
  std::map<std::string, VerdictRecord> verdicts_;  ///< active, by kind|component
  std::deque<VerdictRecord> verdict_history_;      ///< ended, oldest first
  std::map<std::string, DcTraces> spine_traces_;   ///< by DC
};

}  // namespace pingmesh::analyze
