#pragma once
/// Alert rules: what to watch (scope, metric, threshold) and for how long, as plain values with a
/// validating JSON codec, the paper's defaults, and their translation into Prometheus alerting
/// rules. Pure, no I/O.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "collector/stats.hpp"

namespace pingmesh::analyze {

/// What one alert instance covers. Instances of a rule are every DC (dc), ordered pair of
/// distinct DCs (dc_pair), rack, ordered rack pair, or server that has data, or only the whole
/// fleet (global).
///   global     every probe
///   dc         probes inside the DC (source and target in it)
///   dc_pair    probes from one DC to another
///   rack       intra-DC probes from or to a server of the rack (intra-rack ones included)
///   rack_pair  probes from a rack to a rack
///   server     probes from or to the server
enum class Scope : uint8_t { kGlobal = 0, kDc, kDcPair, kRack, kRackPair, kServer };
/// What is compared with the threshold.
///   p50/p99/p999   RTT quantile of answered probes, threshold in milliseconds
///   loss           the paper's loss ratio (collector::Stats), threshold as a ratio
///   failure_rate   failed probes (timeout, refused, error) over all probes, ratio
///   no_data        no answered probe in the window for an instance that had data before (or
///                  is in the topology); threshold unused
enum class Metric : uint8_t { kP50 = 0, kP99, kP999, kLoss, kFailureRate, kNoData };

std::string_view to_string(Scope s);   ///< "global", "dc", "dc_pair", "rack", "rack_pair", "server"
std::string_view to_string(Metric m);  ///< "p50", "p99", "p999", "loss", "failure_rate", "no_data"
/// Inverse of to_string; nullopt for unknown names.
std::optional<Scope> parse_scope(std::string_view s);
/// Inverse of to_string; nullopt for unknown names.
std::optional<Metric> parse_metric(std::string_view s);
/// The quantile of a latency metric (0.5, 0.99, 0.999); 0 for the others.
double quantile_of(Metric m);
/// True for p50, p99, p999.
bool is_latency(Metric m);

/// One alert rule. A rule fires per instance of its scope: pending when the condition first holds,
/// firing once it has held for for_s, resolved when it no longer holds (see alerts.hpp).
struct AlertRule {
  std::string name;  ///< unique; [A-Za-z0-9._-], 1..64 chars
  std::string description;
  Scope scope = Scope::kDc;
  Metric metric = Metric::kLoss;
  double threshold = 0.001;  ///< ratio (loss, failure_rate) or milliseconds (latency)
  collector::Protocol protocol = collector::Protocol::kTcp;
  int64_t window_s = 30;  ///< data evaluated: the last window_s seconds
  int64_t for_s = 0;      ///< pending this long before firing
  std::string severity = "warning";
  std::map<std::string, std::string> labels;  ///< added to the alert's labels
  /// Instance filter on the alert's labels (dc, src_dc, dst_dc, rack, src_rack, dst_rack,
  /// server): every entry must equal the instance's label.
  std::map<std::string, std::string> match;
  uint64_t min_samples = 100;  ///< fewer probes in the window never fire (no_data: unused)
  uint64_t min_events = 3;     ///< fewer lost/failed/slow probes never fire
  bool enabled = true;
  bool operator==(const AlertRule&) const = default;
};

/// A rule that failed validation: `field` names the JSON field ("window_s", "rules[2].scope").
class RuleError : public std::runtime_error {
 public:
  RuleError(std::string field, const std::string& message)
      : std::runtime_error(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

/// Bounds rules are validated against.
struct RuleLimits {
  int64_t max_window_s = 60;  ///< the analyzer's window horizon
  int64_t min_window_s = 5;   ///< one bucket
};

/// The JSON form of a rule (every field).
nlohmann::json to_json(const AlertRule& rule);
/// Decodes and validates one rule. Unknown fields are rejected. Throws RuleError.
AlertRule rule_from_json(const nlohmann::json& j, const RuleLimits& limits);
/// Decodes a rules document: an array of rules or {"rules": [...]}; names must be unique.
std::vector<AlertRule> rules_from_json(const nlohmann::json& j, const RuleLimits& limits);
/// {"rules": [...]}.
nlohmann::json rules_to_json(const std::vector<AlertRule>& rules);

/// The paper's SLA as rules: loss > 0.1 % and P99 > 5 ms per DC and per rack, inter-DC loss,
/// racks and servers with no data.
std::vector<AlertRule> default_alert_rules();

/// Equivalent Prometheus alerting rules (YAML, one group "pingmesh") over the series the
/// analyzer exports on /metrics (pingmesh_loss_ratio, pingmesh_failure_ratio,
/// pingmesh_rtt_seconds{quantile}, pingmesh_window_probes; labels scope, dc, src_dc, dst_dc,
/// rack, protocol). Rules on scopes that are not exported (rack_pair, server) and no_data rules
/// are listed in a comment as skipped.
std::string prometheus_rules_yaml(const std::vector<AlertRule>& rules, int64_t export_window_s);

}  // namespace pingmesh::analyze
