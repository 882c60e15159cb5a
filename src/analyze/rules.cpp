#include "analyze/rules.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <set>

#include "model/topology.hpp"

namespace pingmesh::analyze {

namespace {

constexpr std::string_view kScopes[] = {"global", "dc", "dc_pair", "rack", "rack_pair", "server"};
constexpr std::string_view kMetrics[] = {"p50", "p99", "p999", "loss", "failure_rate", "no_data"};
const std::set<std::string> kMatchKeys = {"dc",       "src_dc",   "dst_dc", "rack",
                                          "src_rack", "dst_rack", "server"};

/// The labels an instance of a scope carries (what `match` may name).
std::set<std::string> labels_of(Scope s) {
  switch (s) {
    case Scope::kGlobal:
      return {};
    case Scope::kDc:
      return {"dc"};
    case Scope::kDcPair:
      return {"src_dc", "dst_dc"};
    case Scope::kRack:
      return {"dc", "rack"};
    case Scope::kRackPair:
      return {"src_dc", "dst_dc", "src_rack", "dst_rack"};
    case Scope::kServer:
      return {"dc", "rack", "server"};
  }
  return {};
}

std::string prefixed(const std::string& prefix, const std::string& field) {
  return prefix.empty() ? field : prefix + "." + field;
}

AlertRule decode(const nlohmann::json& j, const RuleLimits& limits, const std::string& at) {
  if (!j.is_object()) throw RuleError(at, "a rule must be a JSON object");
  AlertRule r;
  static const std::set<std::string> known = {
      "name",  "description", "scope",  "metric", "threshold",   "protocol",   "window_s",
      "for_s", "severity",    "labels", "match",  "min_samples", "min_events", "enabled"};
  for (const auto& [key, value] : j.items()) {
    if (!known.contains(key)) throw RuleError(prefixed(at, key), "unknown field");
  }
  auto str = [&](const char* key, std::string* out, bool required) {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required) throw RuleError(prefixed(at, key), "required");
      return;
    }
    if (!it->is_string()) throw RuleError(prefixed(at, key), "must be a string");
    *out = it->get<std::string>();
  };
  auto integer = [&](const char* key, auto* out, int64_t lo, int64_t hi) {
    auto it = j.find(key);
    if (it == j.end()) return;
    if (!it->is_number_integer() && !it->is_number_unsigned()) {
      throw RuleError(prefixed(at, key), "must be an integer");
    }
    int64_t v = it->get<int64_t>();
    if (v < lo || v > hi) {
      throw RuleError(prefixed(at, key), fmt::format("must be in [{}, {}]", lo, hi));
    }
    *out = static_cast<std::remove_reference_t<decltype(*out)>>(v);
  };
  auto string_map = [&](const char* key, std::map<std::string, std::string>* out) {
    auto it = j.find(key);
    if (it == j.end()) return;
    if (!it->is_object()) throw RuleError(prefixed(at, key), "must be an object of strings");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) throw RuleError(prefixed(at, key) + "." + k, "must be a string");
      (*out)[k] = v.get<std::string>();
    }
  };

  str("name", &r.name, true);
  if (!model::valid_name(r.name)) {
    throw RuleError(prefixed(at, "name"), "must be 1..64 characters of [A-Za-z0-9._-]");
  }
  str("description", &r.description, false);
  std::string text;
  str("scope", &text, true);
  auto scope = parse_scope(text);
  if (!scope) {
    throw RuleError(prefixed(at, "scope"),
                    "must be one of global, dc, dc_pair, rack, rack_pair, server");
  }
  r.scope = *scope;
  text.clear();
  str("metric", &text, true);
  auto metric = parse_metric(text);
  if (!metric) {
    throw RuleError(prefixed(at, "metric"),
                    "must be one of p50, p99, p999, loss, failure_rate, no_data");
  }
  r.metric = *metric;
  if (auto it = j.find("threshold"); it != j.end()) {
    if (!it->is_number()) throw RuleError(prefixed(at, "threshold"), "must be a number");
    r.threshold = it->get<double>();
  } else if (r.metric != Metric::kNoData) {
    throw RuleError(prefixed(at, "threshold"), "required");
  } else {
    r.threshold = 0;
  }
  if (!std::isfinite(r.threshold) || r.threshold < 0) {
    throw RuleError(prefixed(at, "threshold"), "must be a finite number >= 0");
  }
  if ((r.metric == Metric::kLoss || r.metric == Metric::kFailureRate) && r.threshold >= 1) {
    throw RuleError(prefixed(at, "threshold"), "a ratio must be below 1 (0.001 = 0.1 %)");
  }
  text = "tcp";
  str("protocol", &text, false);
  auto protocol = collector::parse_protocol(text);
  if (!protocol) throw RuleError(prefixed(at, "protocol"), "must be one of tcp, udp, icmp, http");
  r.protocol = *protocol;
  integer("window_s", &r.window_s, limits.min_window_s, limits.max_window_s);
  integer("for_s", &r.for_s, 0, 86400);
  str("severity", &r.severity, false);
  if (r.severity.empty() || r.severity.size() > 32) {
    throw RuleError(prefixed(at, "severity"), "must be 1..32 characters");
  }
  string_map("labels", &r.labels);
  for (const auto& [k, v] : r.labels) {
    bool ok = !k.empty() && (std::isalpha(static_cast<unsigned char>(k[0])) || k[0] == '_');
    for (char c : k) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!ok) throw RuleError(prefixed(at, "labels") + "." + k, "not a Prometheus label name");
  }
  string_map("match", &r.match);
  auto allowed = labels_of(r.scope);
  for (const auto& [k, v] : r.match) {
    if (!kMatchKeys.contains(k) || !allowed.contains(k)) {
      throw RuleError(prefixed(at, "match") + "." + k,
                      fmt::format("scope {} has no label {}", to_string(r.scope), k));
    }
  }
  integer("min_samples", &r.min_samples, 1, 1'000'000'000);
  integer("min_events", &r.min_events, 1, 1'000'000'000);
  if (auto it = j.find("enabled"); it != j.end()) {
    if (!it->is_boolean()) throw RuleError(prefixed(at, "enabled"), "must be true or false");
    r.enabled = it->get<bool>();
  }
  return r;
}

std::string duration(int64_t s) { return fmt::format("{}s", s); }

}  // namespace

std::string_view to_string(Scope s) { return kScopes[static_cast<int>(s)]; }
std::string_view to_string(Metric m) { return kMetrics[static_cast<int>(m)]; }

std::optional<Scope> parse_scope(std::string_view s) {
  for (int i = 0; i < 6; ++i) {
    if (kScopes[i] == s) return static_cast<Scope>(i);
  }
  return std::nullopt;
}

std::optional<Metric> parse_metric(std::string_view s) {
  for (int i = 0; i < 6; ++i) {
    if (kMetrics[i] == s) return static_cast<Metric>(i);
  }
  return std::nullopt;
}

double quantile_of(Metric m) {
  switch (m) {
    case Metric::kP50:
      return 0.5;
    case Metric::kP99:
      return 0.99;
    case Metric::kP999:
      return 0.999;
    default:
      return 0;
  }
}

bool is_latency(Metric m) { return quantile_of(m) > 0; }

nlohmann::json to_json(const AlertRule& r) {
  nlohmann::json j = {{"name", r.name},
                      {"description", r.description},
                      {"scope", to_string(r.scope)},
                      {"metric", to_string(r.metric)},
                      {"threshold", r.threshold},
                      {"protocol", collector::to_string(r.protocol)},
                      {"window_s", r.window_s},
                      {"for_s", r.for_s},
                      {"severity", r.severity},
                      {"labels", r.labels},
                      {"match", r.match},
                      {"min_samples", r.min_samples},
                      {"min_events", r.min_events},
                      {"enabled", r.enabled}};
  return j;
}

AlertRule rule_from_json(const nlohmann::json& j, const RuleLimits& limits) {
  return decode(j, limits, "");
}

std::vector<AlertRule> rules_from_json(const nlohmann::json& j, const RuleLimits& limits) {
  const nlohmann::json* list = &j;
  std::string base = "rules";
  if (j.is_object()) {
    auto it = j.find("rules");
    if (it == j.end()) throw RuleError("rules", "required");
    list = &*it;
  }
  if (!list->is_array()) throw RuleError(base, "must be an array of rules");
  std::vector<AlertRule> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string at = fmt::format("{}[{}]", base, i);
    out.push_back(decode((*list)[i], limits, at));
    if (!names.insert(out.back().name).second) {
      throw RuleError(at + ".name", "duplicate rule name " + out.back().name);
    }
  }
  return out;
}

nlohmann::json rules_to_json(const std::vector<AlertRule>& rules) {
  auto arr = nlohmann::json::array();
  for (const auto& r : rules) arr.push_back(to_json(r));
  return nlohmann::json{{"rules", arr}};
}

std::vector<AlertRule> default_alert_rules() {
  auto make = [](std::string name, Scope scope, Metric metric, double threshold,
                 std::string severity, std::string description) {
    AlertRule r;
    r.name = std::move(name);
    r.scope = scope;
    r.metric = metric;
    r.threshold = threshold;
    r.severity = std::move(severity);
    r.description = std::move(description);
    r.window_s = 30;
    r.for_s = 10;
    return r;
  };
  std::vector<AlertRule> rules;
  rules.push_back(make("dc-loss", Scope::kDc, Metric::kLoss, 0.001, "critical",
                       "Packet loss inside a DC above the paper's SLA of 0.1 %"));
  rules.push_back(make("dc-p99", Scope::kDc, Metric::kP99, 5, "critical",
                       "P99 RTT inside a DC above the paper's SLA of 5 ms"));
  rules.push_back(make("rack-loss", Scope::kRack, Metric::kLoss, 0.001, "warning",
                       "Packet loss of a rack's intra-DC probes above 0.1 %"));
  rules.push_back(make("rack-p99", Scope::kRack, Metric::kP99, 5, "warning",
                       "P99 RTT of a rack's intra-DC probes above 5 ms"));
  rules.push_back(make("inter-dc-loss", Scope::kDcPair, Metric::kLoss, 0.001, "warning",
                       "Packet loss between two DCs above 0.1 %"));
  auto rack_no_data = make("rack-no-data", Scope::kRack, Metric::kNoData, 0, "critical",
                           "No probe from or to any server of a rack was answered (white cross)");
  rack_no_data.window_s = 20;
  rack_no_data.for_s = 0;
  rules.push_back(rack_no_data);
  auto server_no_data = make("server-no-data", Scope::kServer, Metric::kNoData, 0, "warning",
                             "A server neither reports nor answers probes");
  server_no_data.window_s = 20;
  server_no_data.for_s = 0;
  rules.push_back(server_no_data);
  return rules;
}

std::string prometheus_rules_yaml(const std::vector<AlertRule>& rules, int64_t export_window_s) {
  YAML::Emitter out;
  std::vector<std::string> skipped;
  out << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "pingmesh";
  out << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
  for (const auto& r : rules) {
    if (!r.enabled) continue;
    if (r.scope == Scope::kRackPair || r.scope == Scope::kServer) {
      skipped.push_back(r.name);
      continue;
    }
    std::string sel = fmt::format("scope=\"{}\",protocol=\"{}\"", to_string(r.scope),
                                  collector::to_string(r.protocol));
    for (const auto& [k, v] : r.match) {
      std::string escaped;
      for (char c : v) {
        if (c == '"' || c == '\\') escaped += '\\';
        escaped += c;
      }
      sel += fmt::format(",{}=\"{}\"", k, escaped);
    }
    std::string expr;
    switch (r.metric) {
      case Metric::kP50:
      case Metric::kP99:
      case Metric::kP999:
        expr = fmt::format(
            "pingmesh_rtt_seconds{{{},quantile=\"{}\"}} > {} and on(scope,protocol,dc,src_dc,"
            "dst_dc,rack) pingmesh_window_answered{{{}}} >= {}",
            sel, quantile_of(r.metric), r.threshold / 1000.0, sel, r.min_samples);
        break;
      case Metric::kLoss:
        expr = fmt::format(
            "pingmesh_loss_ratio{{{}}} > {} and on(scope,protocol,dc,src_dc,dst_dc,rack) "
            "pingmesh_window_answered{{{}}} >= {}",
            sel, r.threshold, sel, r.min_samples);
        break;
      case Metric::kFailureRate:
        expr = fmt::format(
            "pingmesh_failure_ratio{{{}}} > {} and on(scope,protocol,dc,src_dc,dst_dc,rack) "
            "pingmesh_window_probes{{{}}} >= {}",
            sel, r.threshold, sel, r.min_samples);
        break;
      case Metric::kNoData:
        expr = fmt::format("pingmesh_window_answered{{{}}} == 0", sel);
        break;
    }
    out << YAML::BeginMap;
    out << YAML::Key << "alert" << YAML::Value << r.name;
    out << YAML::Key << "expr" << YAML::Value << expr;
    if (r.for_s > 0) out << YAML::Key << "for" << YAML::Value << duration(r.for_s);
    out << YAML::Key << "labels" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "severity" << YAML::Value << r.severity;
    for (const auto& [k, v] : r.labels) {
      if (k != "severity") out << YAML::Key << k << YAML::Value << v;
    }
    out << YAML::EndMap;
    out << YAML::Key << "annotations" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "summary" << YAML::Value
        << fmt::format(
               "{} {} {} {}", r.name, to_string(r.metric), r.metric == Metric::kNoData ? "" : ">",
               r.metric == Metric::kNoData ? std::string{} : fmt::format("{}", r.threshold));
    if (!r.description.empty()) {
      out << YAML::Key << "description" << YAML::Value << r.description;
    }
    out << YAML::EndMap;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap << YAML::EndSeq << YAML::EndMap;
  std::string text = fmt::format(
      "# Generated by pingmesh from its alert rules. The series are exported by `pingmesh server`\n"
      "# on /metrics, each over the last {} s; a rule's own window_s is not re-expressed.\n",
      export_window_s);
  if (!skipped.empty()) {
    text += "# Skipped (rack_pair and server scopes are not exported as series):";
    for (const auto& s : skipped) text += " " + s;
    text += "\n";
  }
  return text + out.c_str() + "\n";
}

}  // namespace pingmesh::analyze
