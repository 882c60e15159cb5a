#pragma once
/// The alert state machine and its bounded history. An alert is one instance of a rule (or one
/// localized fault), deduplicated by its fingerprint (rule + instance). States:
///   (none) --breach--> pending --breach held for_s--> firing --clear--> resolved
///   pending --no breach--> (dropped, never notified)
///   firing --neither breach nor clear (e.g. too few samples) for hold_ms--> resolved
/// A resolved alert is final; if the condition comes back, a new alert (new id) starts.
/// Pure (time passed in), not thread-safe.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pingmesh::analyze {

/// Where an alert is in its life (see the diagram above).
enum class AlertState : uint8_t { kPending = 0, kFiring, kResolved };
std::string_view to_string(AlertState s);  ///< "pending", "firing", "resolved"
std::optional<AlertState> parse_alert_state(std::string_view s);

using LabelMap = std::map<std::string, std::string>;

/// One evaluation of one instance. breach and clear are exclusive; neither = hold the state.
struct Condition {
  bool breach = false;  ///< confidently past the threshold
  bool clear = false;   ///< back at or below the threshold
  double value = 0;     ///< the metric's value (ratio, ms, or count)
  uint64_t samples = 0;
};

/// An instance of a rule as evaluated.
struct Instance {
  std::string key;  ///< unique within the rule ("dc=dc1", "rack=dc1/r5", ...)
  LabelMap labels;  ///< scope labels (dc, rack, ...)
  Condition condition;
  std::string summary;                ///< human text for the annotation
  std::vector<std::string> verdicts;  ///< components of the verdicts that explain it
  std::string scope;                  ///< overrides RuleSpec::scope for this instance
};

/// What the book needs to know about a rule.
struct RuleSpec {
  std::string name;
  std::string alertname;  ///< the alertname label
  std::string severity;
  int64_t for_ms = 0;
  int64_t hold_ms = 30000;
  double threshold = 0;
  LabelMap labels;  ///< extra labels
  std::string description;
  std::string scope;  ///< what an instance is: the rule's scope ("dc", "rack", ...)
};

/// One alert: a rule (or a localized fault) for one instance, with its timeline.
struct Alert {
  uint64_t id = 0;
  std::string rule;
  std::string fingerprint;  ///< rule + '|' + instance key
  /// What the alert is about: the rule's scope (global, dc, dc_pair, rack, rack_pair, server),
  /// or for a localized fault its component type (server, rack, spine_layer, spine, dc,
  /// inter_dc).
  std::string scope;
  LabelMap labels;       ///< alertname, severity, rule, the instance's and the rule's labels
  LabelMap annotations;  ///< summary, description
  AlertState state = AlertState::kPending;
  int64_t active_since_ms = 0;  ///< became pending
  int64_t fired_ms = 0;         ///< became firing (0 = never)
  int64_t resolved_ms = 0;      ///< became resolved (0 = not yet)
  int64_t updated_ms = 0;       ///< last state change or value update
  int64_t last_breach_ms = 0;
  double value = 0;
  double threshold = 0;
  uint64_t samples = 0;
  std::vector<std::string> verdicts;  ///< components of the verdicts attached to it
  /// Restored after a restart: held (not resolved for lack of a breach) until this time, so the
  /// empty windows of a new process do not resolve it. Not part of the API form.
  int64_t hold_until_ms = 0;
};

/// The API form of an alert (times in Unix ms; null when not reached).
nlohmann::json to_json(const Alert& a);

/// A filter of alerts (the query parameters of GET /api/v1/alerts). An alert's interval is
/// [active_since_ms, updated_ms] (updated_ms = its resolution time once resolved).
struct AlertQuery {
  std::optional<AlertState> state;
  bool active_only = false;      ///< pending or firing
  int64_t since_ms = 0;          ///< interval ends at or after (updated_ms >= since_ms)
  int64_t until_ms = INT64_MAX;  ///< interval starts at or before (active_since_ms <= until_ms)
  std::string rule;              ///< exact rule name ("" = any)
  std::string scope;             ///< Alert::scope ("" = any)
  std::string severity;          ///< severity label ("" = any)
  LabelMap labels;               ///< every entry must equal the alert's label
  std::size_t limit = 1000;

  /// True when `a` passes every filter (limit aside).
  bool matches(const Alert& a) const;
};

/// Sorts newest first (updated_ms, then id), drops duplicate ids (the first kept) and cuts to
/// `limit`. Used to merge the in-memory view with the store's.
void sort_alerts(std::vector<Alert>* alerts, std::size_t limit);

/// A state change that is notified.
struct AlertEvent {
  enum class Kind : uint8_t { kFiring, kResolved };
  Kind kind = Kind::kFiring;
  Alert alert;
};

/// Active alerts by fingerprint and the bounded history of resolved ones.
class AlertBook {
 public:
  /// Keeps at most max_history resolved alerts (the oldest are forgotten first).
  explicit AlertBook(std::size_t max_history = 10000) : max_history_(max_history) {}

  /// Applies one evaluation of a rule. Active alerts of the rule whose instance is missing from
  /// `instances` hold their state (and resolve after hold_ms without a breach).
  void apply(const RuleSpec& rule, const std::vector<Instance>& instances, int64_t now_ms,
             std::vector<AlertEvent>* events);
  /// Resolves every active alert of a rule (rule deleted or disabled); pending ones are dropped.
  void resolve_rule(const std::string& rule, int64_t now_ms, std::vector<AlertEvent>* events);

  /// Alerts, newest first: active ones and the history, optionally filtered by state and by
  /// updated_ms >= since_ms; at most `limit`.
  std::vector<Alert> list(std::optional<AlertState> state, bool active_only, int64_t since_ms,
                          std::size_t limit) const;
  /// Alerts matching `q` (active ones and the in-memory history), newest first.
  std::vector<Alert> list(const AlertQuery& q) const;
  /// Puts back alerts that were active before a restart (firing ones; others are ignored) and
  /// continues ids at next_id. They hold until hold_until_ms whatever the evaluations say, then
  /// follow the rules as usual. An alert whose fingerprint is already active is ignored.
  void restore(const std::vector<Alert>& active, uint64_t next_id, int64_t hold_until_ms);
  /// The id the next new alert gets.
  uint64_t next_id() const { return next_id_; }
  /// Calls fn on each active (pending or firing) alert.
  void for_each_active(const std::function<void(Alert&)>& fn);
  std::size_t active_count() const { return active_.size(); }
  /// True when an alert with this fingerprint (rule + '|' + instance key) is pending or firing.
  bool is_active(const std::string& fingerprint) const { return active_.contains(fingerprint); }
  std::size_t history_size() const { return history_.size(); }

 private:
  void finish(std::unordered_map<std::string, Alert>::iterator it, int64_t now_ms,
              std::vector<AlertEvent>* events);

  std::size_t max_history_;
  uint64_t next_id_ = 1;
  std::unordered_map<std::string, Alert> active_;  ///< by fingerprint
  std::deque<Alert> history_;                      ///< resolved, oldest first
};

}  // namespace pingmesh::analyze
