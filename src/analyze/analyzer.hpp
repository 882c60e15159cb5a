#pragma once
/// The analyzer shell: the Engine (windows, rules, localization, alerts) behind a mutex, the
/// rules file, the HTTP API, the exported series and the notification sender. `pingmesh server`
/// feeds it every batch the collector accepted (observe) and calls evaluate() every ~2 s from a
/// background thread. See docs/ANALYZER.md.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "analyze/alert_store.hpp"
#include "analyze/engine.hpp"
#include "analyze/notify.hpp"
#include "common/http.hpp"
#include "common/metrics.hpp"
#include "common/router.hpp"
#include "model/topology.hpp"
#include "pingmesh.pb.h"

namespace pingmesh::analyze {

/// Configuration of the analyzer shell.
struct AnalyzerOptions {
  EngineOptions engine;
  NotifyOptions notify;
  /// Rules file (JSON or YAML: a list of rules or {"rules": [...]}). Loaded by the constructor
  /// when it exists (a bad file throws); changes made through the API are written back to it
  /// (atomically, as JSON). Empty: the default rules, kept in memory only.
  std::string rules_path;
  /// Alert history file (SQLite, created if missing): alerts are written when they fire and
  /// resolve; at start-up the firing ones are restored. Empty: history in memory only (bounded
  /// by EngineOptions::max_alert_history, lost on restart). A file that cannot be opened throws.
  std::string history_path;
  /// How long resolved alerts are kept in the history file.
  AlertRetention retention;
  /// Restored alerts are held (not resolved for lack of data) this long after start-up, while
  /// the windows fill again (the window ring is 60 s).
  int64_t restore_grace_ms = 60000;
  /// Export pingmesh_loss_ratio, pingmesh_failure_ratio, pingmesh_rtt_seconds,
  /// pingmesh_window_probes and pingmesh_window_answered per global/dc/dc_pair/rack scope.
  bool export_series = true;
  /// Decides whether a request may change rules: nullopt = allowed, else the answer (401/403).
  /// Unset: only loopback clients may change rules.
  std::function<std::optional<http::Response>(const http::Request&)> authorize_write;
  /// Decides whether a request may use the agents' trace routes (poll, upload): nullopt =
  /// allowed, else the answer. Unset: anyone.
  std::function<std::optional<http::Response>(const http::Request&)> authorize_agent;
  /// Traceroute rounds that narrow fabric loss to one spine (trace.hpp).
  TraceOptions trace;
};

/// Thread-safe: observe(), evaluate() and the handlers may run on any threads.
class Analyzer {
 public:
  /// `registry` must outlive the analyzer; `topology` returns the current topology (or null) and
  /// is called from evaluate(). Throws std::runtime_error on an unreadable or invalid rules file.
  Analyzer(AnalyzerOptions options, metrics::Registry* registry,
           std::function<std::shared_ptr<const model::Topology>()> topology);
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  /// Called for every batch the collector accepted (cheap: counters into short sliding windows).
  /// Thread-safe.
  void observe(const pingmesh::v1::ResultBatch& batch, int64_t now_ms);
  /// Evaluates rules and detectors; the server calls it every ~2 s from a background thread.
  /// State changes are handed to the notification sender. Thread-safe.
  void evaluate(int64_t now_ms);
  /// GET /api/v1/alerts, GET|POST|PUT /api/v1/alert-rules, GET|PUT|DELETE
  /// /api/v1/alert-rules/{name}, GET /api/v1/alert-rules/prometheus, GET /api/v1/verdicts.
  void register_routes(http::Router& router);
  /// Starts / stops the notification sender thread. stop() also writes the latest state of the
  /// firing alerts to the history file. Idempotent.
  void start();
  void stop();

  /// The routes' OpenAPI fragment (paths and tags), for controller::merge_openapi.
  static nlohmann::json openapi_fragment();

  /// In-process views (tests, the simulator).
  std::vector<Alert> alerts(std::optional<AlertState> state, bool active_only) const;
  std::vector<VerdictRecord> verdicts(bool active_only) const;
  std::vector<AlertRule> rules() const;
  /// Replaces every rule (validated by the caller); persists them when a rules file is set.
  void set_rules(std::vector<AlertRule> rules);
  NotifyStats notify_stats() const { return notifier_.stats(); }

  http::Response handle_alerts(const http::Request& request);
  http::Response handle_verdicts(const http::Request& request);
  http::Response handle_rules_list(const http::Request& request);
  http::Response handle_rules_create(const http::Request& request);
  http::Response handle_rules_replace(const http::Request& request);
  http::Response handle_rule_get(const http::Request& request);
  http::Response handle_rule_put(const http::Request& request);
  http::Response handle_rule_delete(const http::Request& request);
  http::Response handle_prometheus(const http::Request& request);
  /// GET /api/v1/traces/requests/{agent}: 200 {"requests": [...]} or 204.
  http::Response handle_trace_requests(const http::Request& request);
  /// POST /api/v1/traces: an agent's trace results.
  http::Response handle_trace_results(const http::Request& request);
  /// GET /api/v1/traces: the per-DC aggregates (spines, probes, losses, evidence).
  http::Response handle_traces(const http::Request& request);

 private:
  std::optional<http::Response> check_write(const http::Request& request) const;
  /// Applies new rules under mu_ and persists them; returns the events to notify.
  std::vector<AlertEvent> apply_rules_locked(std::vector<AlertRule> rules);
  void persist_locked() const;
  /// Writes fired and resolved alerts to the history file (mu_ held, so writes keep order).
  void record_locked(const std::vector<AlertEvent>& events);
  AlertQuery parse_alert_query(const http::Request& request, http::Response* error) const;
  void export_series_locked(int64_t now_ms);
  /// Queues trace requests for DCs with fabric loss (rate limited by the coordinator).
  void plan_traces_locked(int64_t now_ms, const std::shared_ptr<const model::Topology>& topology);
  RuleLimits limits() const;

  AnalyzerOptions options_;
  metrics::Registry* registry_;
  std::function<std::shared_ptr<const model::Topology>()> topology_;
  mutable std::mutex mu_;
  Engine engine_;
  TraceCoordinator traces_;
  std::shared_ptr<const model::Topology> last_topology_;
  int64_t last_now_ms_ = 0;
  std::map<LabelMap, bool> exported_;  ///< series label sets exported so far
  Notifier notifier_;
  std::unique_ptr<AlertStore> store_;
  int64_t last_prune_ms_ = 0;
  metrics::Counter* store_errors_ = nullptr;
  metrics::Counter* results_ = nullptr;
  metrics::Counter* results_bad_ = nullptr;
  metrics::Histogram* evaluate_seconds_ = nullptr;
  metrics::Gauge* pending_ = nullptr;
  metrics::Gauge* firing_ = nullptr;
  metrics::Gauge* verdicts_active_ = nullptr;
  metrics::Counter* trace_requests_ = nullptr;
  metrics::Counter* trace_results_ = nullptr;
};

}  // namespace pingmesh::analyze
