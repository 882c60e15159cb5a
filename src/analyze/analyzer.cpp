#include "analyze/analyzer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "model/document.hpp"
#include "model/topology_json.hpp"

namespace pingmesh::analyze {

namespace {

using http::Request;
using http::Response;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool loopback(std::string_view a) {
  return a.starts_with("127.") || a == "::1" || a.starts_with("::ffff:127.");
}

Response rule_error(const RuleError& e) { return Response::error(400, e.what(), e.field()); }

std::optional<nlohmann::json> parse_body(const Request& req, Response* error) {
  auto j = nlohmann::json::parse(req.body, nullptr, false);
  if (j.is_discarded()) {
    *error = Response::error(400, "the body is not valid JSON");
    return std::nullopt;
  }
  return j;
}

metrics::Labels to_labels(const LabelMap& m) { return {m.begin(), m.end()}; }

}  // namespace

Analyzer::Analyzer(AnalyzerOptions options, metrics::Registry* registry,
                   std::function<std::shared_ptr<const model::Topology>()> topology)
    : options_(std::move(options)),
      registry_(registry),
      topology_(std::move(topology)),
      engine_(options_.engine),
      traces_(options_.trace),
      notifier_(options_.notify, registry) {
  std::vector<AlertRule> rules = default_alert_rules();
  if (!options_.rules_path.empty() && std::filesystem::exists(options_.rules_path)) {
    std::ifstream in(options_.rules_path, std::ios::binary);
    if (!in) throw std::runtime_error(options_.rules_path + ": cannot read the rules file");
    std::stringstream text;
    text << in.rdbuf();
    try {
      rules = rules_from_json(model::parse_document(text.str(), options_.rules_path), limits());
    } catch (const RuleError& e) {
      throw std::runtime_error(options_.rules_path + ": " + e.field() + ": " + e.what());
    } catch (const model::ValidationError& e) {
      throw std::runtime_error(e.message());
    }
  }
  std::vector<AlertEvent> none;
  engine_.set_rules(std::move(rules), 0, &none);
  if (registry_ != nullptr) {
    store_errors_ =
        &registry_->counter("pingmesh_analyzer_alert_store_errors_total",
                            "Failed writes to the alert history file (the alerts stay in memory).");
    results_ = &registry_->counter("pingmesh_analyzer_results_total",
                                   "Probe results the analyzer observed.");
    results_bad_ = &registry_->counter(
        "pingmesh_analyzer_results_bad_total",
        "Results the analyzer could not use (bad peer index, protocol or outcome, no source).");
    evaluate_seconds_ = &registry_->histogram("pingmesh_analyzer_evaluate_seconds",
                                              "Time to evaluate rules and detectors once.",
                                              metrics::exponential_buckets(0.001, 2, 14));
    pending_ = &registry_->gauge("pingmesh_analyzer_alerts", "Active alerts by state.",
                                 {{"state", "pending"}});
    firing_ = &registry_->gauge("pingmesh_analyzer_alerts", "Active alerts by state.",
                                {{"state", "firing"}});
    verdicts_active_ = &registry_->gauge("pingmesh_analyzer_verdicts",
                                         "Faults currently localized (active verdicts).");
    trace_requests_ = &registry_->counter(
        "pingmesh_analyzer_trace_requests_total",
        "Traceroute requests queued for agents (fabric loss narrowed to a spine).");
    trace_results_ = &registry_->counter("pingmesh_analyzer_trace_results_total",
                                         "Traceroute results received from agents.");
  }
  if (!options_.history_path.empty()) {
    auto parent = std::filesystem::path(options_.history_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    store_ = open_sqlite_alert_store(options_.history_path);
    int64_t now = wall_ms();
    std::size_t pruned = store_->prune(options_.retention, now);
    last_prune_ms_ = now;
    auto stored = store_->load();
    std::vector<AlertEvent> events;
    engine_.restore_alerts(stored.active, stored.next_id, now, options_.restore_grace_ms, &events);
    record_locked(events);
    std::vector<Alert> firing;
    for (const auto& a : engine_.alerts().list(AlertState::kFiring, true, 0, SIZE_MAX)) {
      firing.push_back(a);
    }
    notifier_.restore_firing(firing);
    notifier_.enqueue(events);
    spdlog::info(
        "analyzer: alert history {}: {} alerts stored ({} pruned), {} firing restored, {} of "
        "them resolved at once (their rule is gone)",
        options_.history_path, store_->count(), pruned, stored.active.size(), events.size());
  }
}

Analyzer::~Analyzer() { stop(); }

void Analyzer::record_locked(const std::vector<AlertEvent>& events) {
  if (!store_ || events.empty()) return;
  std::vector<Alert> alerts;
  alerts.reserve(events.size());
  for (const auto& e : events) alerts.push_back(e.alert);
  try {
    store_->put(alerts);
  } catch (const std::exception& e) {
    spdlog::error("analyzer: {} alert changes not written to the history: {}", alerts.size(),
                  e.what());
    if (store_errors_ != nullptr) store_errors_->inc();
  }
}

RuleLimits Analyzer::limits() const {
  RuleLimits l;
  l.max_window_s = options_.engine.windows.bucket_ms * options_.engine.windows.buckets / 1000;
  l.min_window_s = std::max<int64_t>(1, options_.engine.windows.bucket_ms / 1000);
  return l;
}

void Analyzer::observe(const v1::ResultBatch& batch, int64_t now_ms) {
  ObserveCounts c;
  {
    std::lock_guard lock(mu_);
    c = engine_.observe(batch, now_ms);
  }
  if (results_ != nullptr) {
    results_->inc(static_cast<double>(c.results));
    if (c.bad > 0) results_bad_->inc(static_cast<double>(c.bad));
  }
}

void Analyzer::evaluate(int64_t now_ms) {
  auto started = std::chrono::steady_clock::now();
  auto topology = topology_ ? topology_() : nullptr;
  std::vector<AlertEvent> events;
  {
    std::lock_guard lock(mu_);
    if (topology && topology != last_topology_) {
      engine_.set_topology(*topology);
      last_topology_ = topology;
    }
    last_now_ms_ = now_ms;
    engine_.set_spine_traces(traces_.traces(now_ms));
    engine_.evaluate(now_ms, &events);
    plan_traces_locked(now_ms, topology);
    record_locked(events);
    if (registry_ != nullptr) {
      uint64_t pending = 0, firing = 0;
      for (const auto& a : engine_.alerts().list(std::nullopt, true, 0, SIZE_MAX)) {
        (a.state == AlertState::kFiring ? firing : pending) += 1;
      }
      pending_->set(static_cast<double>(pending));
      firing_->set(static_cast<double>(firing));
      verdicts_active_->set(static_cast<double>(engine_.verdicts(true, 0).size()));
      if (options_.export_series) export_series_locked(now_ms);
    }
  }
  for (const auto& e : events) {
    spdlog::info("analyzer: {} {} {}", e.kind == AlertEvent::Kind::kFiring ? "FIRING" : "resolved",
                 e.alert.fingerprint,
                 e.alert.annotations.count("summary") ? e.alert.annotations.at("summary") : "");
  }
  notifier_.enqueue(events);
  if (store_ && now_ms - last_prune_ms_ >= 600000) {
    last_prune_ms_ = now_ms;
    try {
      if (auto n = store_->prune(options_.retention, now_ms); n > 0) {
        spdlog::info("analyzer: {} resolved alerts past the retention deleted from {}", n,
                     options_.history_path);
      }
    } catch (const std::exception& e) {
      spdlog::error("analyzer: pruning the alert history failed: {}", e.what());
    }
  }
  if (evaluate_seconds_ != nullptr) {
    evaluate_seconds_->observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
}

void Analyzer::export_series_locked(int64_t now_ms) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  auto values = engine_.series(now_ms);
  for (auto& [labels, seen] : exported_) seen = false;
  auto set = [&](const SeriesValue& v) {
    auto labels = to_labels(v.labels);
    auto& r = *registry_;
    r.gauge("pingmesh_window_probes", "Probes in the analyzer's window, per scope.", labels)
        .set(static_cast<double>(v.probes));
    r.gauge("pingmesh_window_answered", "Answered probes in the analyzer's window, per scope.",
            labels)
        .set(static_cast<double>(v.answered));
    r.gauge("pingmesh_loss_ratio",
            "Loss ratio (the paper's rule: connects needing SYN retransmission over connects) in "
            "the analyzer's window; NaN when nothing counts.",
            labels)
        .set(v.loss);
    r.gauge("pingmesh_failure_ratio", "Failed probes over probes in the analyzer's window.", labels)
        .set(v.failure);
    const std::pair<const char*, double> quantiles[] = {
        {"0.5", v.p50_s}, {"0.99", v.p99_s}, {"0.999", v.p999_s}};
    for (const auto& [q, value] : quantiles) {
      auto ql = labels;
      ql.emplace_back("quantile", q);
      r.gauge("pingmesh_rtt_seconds", "RTT quantiles of answered probes in the analyzer's window.",
              ql)
          .set(value);
    }
  };
  for (const auto& v : values) {
    set(v);
    exported_[v.labels] = true;
  }
  // Series that had data before and have none now: zero probes, unknown ratios.
  for (auto& [labels, seen] : exported_) {
    if (seen) continue;
    SeriesValue empty;
    empty.labels = labels;
    empty.loss = empty.failure = empty.p50_s = empty.p99_s = empty.p999_s = kNaN;
    set(empty);
  }
}

void Analyzer::register_routes(http::Router& router) {
  router.add("GET", "/api/v1/alerts", [this](const Request& r) { return handle_alerts(r); });
  router.add("GET", "/api/v1/verdicts", [this](const Request& r) { return handle_verdicts(r); });
  router.add("GET", "/api/v1/traces/requests/{agent}",
             [this](const Request& r) { return handle_trace_requests(r); });
  router.add("POST", "/api/v1/traces",
             [this](const Request& r) { return handle_trace_results(r); });
  router.add("GET", "/api/v1/traces", [this](const Request& r) { return handle_traces(r); });
  router.add("GET", "/api/v1/alert-rules",
             [this](const Request& r) { return handle_rules_list(r); });
  router.add("POST", "/api/v1/alert-rules",
             [this](const Request& r) { return handle_rules_create(r); });
  router.add("PUT", "/api/v1/alert-rules",
             [this](const Request& r) { return handle_rules_replace(r); });
  // Before /{name}: the router takes the first match.
  router.add("GET", "/api/v1/alert-rules/prometheus",
             [this](const Request& r) { return handle_prometheus(r); });
  router.add("GET", "/api/v1/alert-rules/{name}",
             [this](const Request& r) { return handle_rule_get(r); });
  router.add("PUT", "/api/v1/alert-rules/{name}",
             [this](const Request& r) { return handle_rule_put(r); });
  router.add("DELETE", "/api/v1/alert-rules/{name}",
             [this](const Request& r) { return handle_rule_delete(r); });
}

void Analyzer::start() { notifier_.start(); }
void Analyzer::stop() {
  notifier_.stop();
  if (!store_) return;
  std::lock_guard lock(mu_);
  // The latest values and summaries of the firing alerts, and the id counter.
  try {
    store_->put(engine_.alerts().list(AlertState::kFiring, true, 0, SIZE_MAX));
    store_->put_next_id(engine_.alerts().next_id());
  } catch (const std::exception& e) {
    spdlog::error("analyzer: cannot save the firing alerts at shutdown: {}", e.what());
  }
}

std::vector<Alert> Analyzer::alerts(std::optional<AlertState> state, bool active_only) const {
  std::lock_guard lock(mu_);
  return engine_.alerts().list(state, active_only, 0, SIZE_MAX);
}

std::vector<VerdictRecord> Analyzer::verdicts(bool active_only) const {
  std::lock_guard lock(mu_);
  return engine_.verdicts(active_only, 0);
}

std::vector<AlertRule> Analyzer::rules() const {
  std::lock_guard lock(mu_);
  return engine_.rules();
}

void Analyzer::set_rules(std::vector<AlertRule> rules) {
  std::vector<AlertEvent> events;
  {
    std::lock_guard lock(mu_);
    events = apply_rules_locked(std::move(rules));
  }
  notifier_.enqueue(events);
}

std::vector<AlertEvent> Analyzer::apply_rules_locked(std::vector<AlertRule> rules) {
  std::vector<AlertEvent> events;
  engine_.set_rules(std::move(rules), last_now_ms_ > 0 ? last_now_ms_ : wall_ms(), &events);
  persist_locked();
  record_locked(events);
  return events;
}

void Analyzer::persist_locked() const {
  if (options_.rules_path.empty()) return;
  std::string tmp = options_.rules_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << rules_to_json(engine_.rules()).dump(2) << "\n";
    out.flush();
    if (!out) {
      spdlog::error("analyzer: cannot write {}: rules changed in memory only", tmp);
      return;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, options_.rules_path, ec);
  if (ec) {
    spdlog::error("analyzer: cannot replace {}: {}", options_.rules_path, ec.message());
  }
}

void Analyzer::plan_traces_locked(int64_t now_ms,
                                  const std::shared_ptr<const model::Topology>& topology) {
  if (!topology) return;
  std::vector<std::string> dcs;
  for (const auto& r : engine_.verdicts(true, 0)) {
    if (r.verdict.kind == "fabric_loss") dcs.push_back(r.verdict.dc);
  }
  if (dcs.empty() || !traces_.due(now_ms, dcs)) return;
  std::size_t n = traces_.plan(now_ms, dcs, engine_.snapshot(now_ms), *topology);
  if (n > 0) {
    spdlog::info("analyzer: fabric loss: {} traceroute requests queued for agents", n);
    if (trace_requests_ != nullptr) trace_requests_->inc(static_cast<double>(n));
  }
}

Response Analyzer::handle_trace_requests(const Request& request) {
  if (options_.authorize_agent) {
    if (auto denied = options_.authorize_agent(request)) return *denied;
  }
  const std::string& agent = request.params.at(0);
  std::string body;
  {
    std::lock_guard lock(mu_);
    body = traces_.take_requests(agent, last_now_ms_ ? last_now_ms_ : wall_ms());
  }
  if (body.empty()) {
    Response r;
    r.status = 204;
    return r;
  }
  return Response::json(std::move(body));
}

Response Analyzer::handle_trace_results(const Request& request) {
  if (options_.authorize_agent) {
    if (auto denied = options_.authorize_agent(request)) return *denied;
  }
  Response err;
  auto body = parse_body(request, &err);
  if (!body) return err;
  auto topology = topology_ ? topology_() : nullptr;
  std::string error, field;
  std::size_t ignored = 0;
  std::size_t accepted = 0;
  {
    std::lock_guard lock(mu_);
    auto before = traces_.answered();
    if (!traces_.add_results(*body, topology.get(), last_now_ms_ ? last_now_ms_ : wall_ms(), &error,
                             &field, &ignored)) {
      return Response::error(400, field.empty() ? error : field + ": " + error, field);
    }
    accepted = traces_.answered() - before;
  }
  if (trace_results_ != nullptr) trace_results_->inc(static_cast<double>(accepted));
  return Response::json(nlohmann::json{{"accepted", accepted}, {"ignored", ignored}}.dump());
}

Response Analyzer::handle_traces(const Request&) {
  nlohmann::json out = nlohmann::json::object();
  std::lock_guard lock(mu_);
  for (const auto& [dc, t] : traces_.traces(last_now_ms_ ? last_now_ms_ : wall_ms())) {
    auto spines = nlohmann::json::array();
    for (const auto& s : t.spines) {
      spines.push_back({{"spine", s.spine}, {"probes", s.probes}, {"lost", s.lost}});
    }
    out[dc] = {{"spines", spines}, {"updated_ms", t.updated_ms}, {"evidence", t.evidence}};
  }
  return Response::json(nlohmann::json{{"dcs", out}}.dump());
}

std::optional<Response> Analyzer::check_write(const Request& request) const {
  if (options_.authorize_write) return options_.authorize_write(request);
  if (loopback(request.remote_addr)) return std::nullopt;
  return Response::error(403, "rules may be changed only from loopback (no admin token set)");
}

AlertQuery Analyzer::parse_alert_query(const Request& request, Response* error) const {
  AlertQuery q;
  auto param = [&](const char* key) -> std::optional<std::string> {
    auto v = request.query_param(key);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  if (auto s = param("state")) {
    if (*s == "active") {
      q.active_only = true;
    } else {
      q.state = parse_alert_state(*s);
      if (!q.state) {
        *error = Response::error(400, "state must be pending, firing, resolved or active", "state");
        return q;
      }
    }
  }
  auto seconds = [&](const char* key, int64_t* out) {
    auto s = param(key);
    if (!s) return true;
    char* end = nullptr;
    double v = std::strtod(s->c_str(), &end);
    if (end == s->c_str() || *end != '\0' || !std::isfinite(v) || v < 0 || v > 1e11) {
      *error = Response::error(400, std::string(key) + " must be a Unix time in seconds", key);
      return false;
    }
    *out = static_cast<int64_t>(v * 1000);
    return true;
  };
  if (!seconds("since", &q.since_ms) || !seconds("until", &q.until_ms)) return q;
  if (auto s = param("limit")) {
    char* end = nullptr;
    long long v = std::strtoll(s->c_str(), &end, 10);
    if (end == s->c_str() || *end != '\0' || v < 1 || v > 100000) {
      *error = Response::error(400, "limit must be an integer in 1..100000", "limit");
      return q;
    }
    q.limit = static_cast<std::size_t>(v);
  }
  q.rule = param("rule").value_or("");
  q.severity = param("severity").value_or("");
  if (auto s = param("scope")) {
    static const std::vector<std::string> scopes{"global",      "dc",        "dc_pair",
                                                 "rack",        "rack_pair", "server",
                                                 "spine_layer", "spine",     "inter_dc"};
    if (std::find(scopes.begin(), scopes.end(), *s) == scopes.end()) {
      *error = Response::error(400,
                               "scope must be global, dc, dc_pair, rack, rack_pair, server (rule "
                               "scopes) or spine_layer, spine, inter_dc (localized components)",
                               "scope");
      return q;
    }
    q.scope = *s;
  }
  if (auto s = param("labels")) {
    std::string_view rest = *s;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      auto eq = item.find('=');
      auto key = item.substr(0, eq);
      bool ok = eq != std::string_view::npos && !key.empty() &&
                std::all_of(key.begin(), key.end(), [](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                });
      if (!ok) {
        *error = Response::error(400, "labels must be key=value[,key=value...]", "labels");
        return q;
      }
      q.labels[std::string(key)] = std::string(item.substr(eq + 1));
    }
  }
  return q;
}

Response Analyzer::handle_alerts(const Request& request) {
  Response error;
  AlertQuery q = parse_alert_query(request, &error);
  if (error.status >= 400) return error;
  std::vector<Alert> list;
  {
    std::lock_guard lock(mu_);
    list = engine_.alerts().list(q);
  }
  // The history file holds what the memory has forgotten (older, or from before a restart).
  if (store_ && !q.active_only && q.state != AlertState::kPending) {
    try {
      auto stored = store_->query(q);
      list.insert(list.end(), std::make_move_iterator(stored.begin()),
                  std::make_move_iterator(stored.end()));
      sort_alerts(&list, q.limit);
    } catch (const std::exception& e) {
      spdlog::error("analyzer: alert history query failed: {}", e.what());
      return Response::error(500, std::string("alert history: ") + e.what());
    }
  }
  auto arr = nlohmann::json::array();
  for (const auto& a : list) arr.push_back(to_json(a));
  return Response::json(nlohmann::json{{"alerts", arr}}.dump());
}

Response Analyzer::handle_verdicts(const Request& request) {
  bool active_only = request.query_param("active").value_or("") == "true";
  int64_t since_ms = 0;
  try {
    if (auto s = request.query_param("since"); s && !s->empty()) {
      since_ms = static_cast<int64_t>(std::stod(*s) * 1000);
    }
  } catch (const std::exception&) {
    return Response::error(400, "since must be Unix seconds", "since");
  }
  std::vector<VerdictRecord> list;
  {
    std::lock_guard lock(mu_);
    list = engine_.verdicts(active_only, since_ms);
  }
  auto arr = nlohmann::json::array();
  for (const auto& v : list) arr.push_back(to_json(v));
  return Response::json(nlohmann::json{{"verdicts", arr}}.dump());
}

Response Analyzer::handle_rules_list(const Request&) {
  return Response::json(rules_to_json(rules()).dump());
}

Response Analyzer::handle_rules_create(const Request& request) {
  if (auto denied = check_write(request)) return *denied;
  Response err;
  auto body = parse_body(request, &err);
  if (!body) return err;
  AlertRule rule;
  try {
    rule = rule_from_json(*body, limits());
  } catch (const RuleError& e) {
    return rule_error(e);
  }
  std::vector<AlertEvent> events;
  {
    std::lock_guard lock(mu_);
    auto rules = engine_.rules();
    for (const auto& r : rules) {
      if (r.name == rule.name) return Response::error(409, "rule exists: " + rule.name, "name");
    }
    rules.push_back(rule);
    events = apply_rules_locked(std::move(rules));
  }
  notifier_.enqueue(events);
  return Response::json(to_json(rule).dump(), 201);
}

Response Analyzer::handle_rules_replace(const Request& request) {
  if (auto denied = check_write(request)) return *denied;
  Response err;
  auto body = parse_body(request, &err);
  if (!body) return err;
  std::vector<AlertRule> rules;
  try {
    rules = rules_from_json(*body, limits());
  } catch (const RuleError& e) {
    return rule_error(e);
  }
  set_rules(rules);
  return Response::json(rules_to_json(rules).dump());
}

Response Analyzer::handle_rule_get(const Request& request) {
  const auto& name = request.params.at(0);
  for (const auto& r : rules()) {
    if (r.name == name) return Response::json(to_json(r).dump());
  }
  return Response::error(404, "no such rule: " + name, "name");
}

Response Analyzer::handle_rule_put(const Request& request) {
  if (auto denied = check_write(request)) return *denied;
  const auto& name = request.params.at(0);
  Response err;
  auto body = parse_body(request, &err);
  if (!body) return err;
  if (body->is_object() && !body->contains("name")) (*body)["name"] = name;
  AlertRule rule;
  try {
    rule = rule_from_json(*body, limits());
  } catch (const RuleError& e) {
    return rule_error(e);
  }
  if (rule.name != name) return Response::error(400, "name differs from the path", "name");
  std::vector<AlertEvent> events;
  bool created = true;
  {
    std::lock_guard lock(mu_);
    auto rules = engine_.rules();
    for (auto& r : rules) {
      if (r.name == name) {
        r = rule;
        created = false;
      }
    }
    if (created) rules.push_back(rule);
    events = apply_rules_locked(std::move(rules));
  }
  notifier_.enqueue(events);
  return Response::json(to_json(rule).dump(), created ? 201 : 200);
}

Response Analyzer::handle_rule_delete(const Request& request) {
  if (auto denied = check_write(request)) return *denied;
  const auto& name = request.params.at(0);
  std::vector<AlertEvent> events;
  {
    std::lock_guard lock(mu_);
    auto rules = engine_.rules();
    auto it = std::find_if(rules.begin(), rules.end(),
                           [&](const AlertRule& r) { return r.name == name; });
    if (it == rules.end()) return Response::error(404, "no such rule: " + name, "name");
    rules.erase(it);
    events = apply_rules_locked(std::move(rules));
  }
  notifier_.enqueue(events);
  return Response{204, "application/json", {}, {}, nullptr};
}

Response Analyzer::handle_prometheus(const Request&) {
  int64_t window_s = options_.engine.localize_window_ms / 1000;
  return Response::text(prometheus_rules_yaml(rules(), window_s), 200,
                        "application/yaml; charset=utf-8");
}

nlohmann::json Analyzer::openapi_fragment() {
  auto op = [](const char* summary, const char* id) {
    return nlohmann::json{{"summary", summary},
                          {"operationId", id},
                          {"tags", {"analyzer"}},
                          {"responses", {{"200", {{"description", "OK"}}}}}};
  };
  auto with_body = [&](const char* summary, const char* id) {
    auto j = op(summary, id);
    j["requestBody"] = {{"required", true},
                        {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
    j["responses"]["400"] = {{"description", "invalid rule ({error, field})"}};
    j["responses"]["403"] = {{"description", "not allowed to change rules"}};
    return j;
  };
  auto name_param = nlohmann::json::array(
      {{{"name", "name"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}}});
  nlohmann::json paths;
  auto alerts =
      op("Alerts: the active ones and the history (kept in the server's data directory, bounded by "
         "retention), newest first (by last update, then id). An alert's interval is "
         "[active_since_ms, updated_ms]; since/until select the alerts whose interval overlaps "
         "[since, until].",
         "listAlerts");
  auto qp = [](const char* name, nlohmann::json schema, const char* description) {
    return nlohmann::json{
        {"name", name}, {"in", "query"}, {"schema", schema}, {"description", description}};
  };
  alerts["parameters"] = nlohmann::json::array(
      {qp("state", {{"type", "string"}, {"enum", {"pending", "firing", "resolved", "active"}}},
          "Only alerts in this state (active = pending or firing)"),
       qp("since", {{"type", "number"}},
          "Unix seconds: alerts still active at or after this time (updated_ms >= since)"),
       qp("until", {{"type", "number"}},
          "Unix seconds: alerts that began at or before this time (active_since_ms <= until)"),
       qp("rule", {{"type", "string"}}, "Rule name, e.g. dc-loss or localization/tor_black_hole"),
       qp("scope",
          {{"type", "string"},
           {"enum",
            {"global", "dc", "dc_pair", "rack", "rack_pair", "server", "spine_layer", "spine",
             "inter_dc"}}},
          "What the alert is about: the rule's scope, or a localized component's type"),
       qp("severity", {{"type", "string"}}, "Severity label, e.g. critical"),
       qp("labels", {{"type", "string"}},
          "Label filter key=value[,key=value...], every pair must match (e.g. dc=dc1)"),
       qp("limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100000}, {"default", 1000}},
          "Most alerts returned")});
  alerts["responses"]["200"] = {
      {"description", "{\"alerts\": [...]}"},
      {"content",
       {{"application/json",
         {{"schema",
           {{"type", "object"},
            {"properties",
             {{"alerts",
               {{"type", "array"},
                {"items",
                 {{"type", "object"},
                  {"properties",
                   {{"id", {{"type", "integer"}}},
                    {"rule", {{"type", "string"}}},
                    {"fingerprint", {{"type", "string"}}},
                    {"scope", {{"type", "string"}}},
                    {"state", {{"type", "string"}, {"enum", {"pending", "firing", "resolved"}}}},
                    {"labels", {{"type", "object"}}},
                    {"annotations", {{"type", "object"}}},
                    {"active_since_ms", {{"type", "integer"}}},
                    {"fired_ms", {{"type", "integer"}, {"nullable", true}}},
                    {"resolved_ms", {{"type", "integer"}, {"nullable", true}}},
                    {"updated_ms", {{"type", "integer"}}},
                    {"value", {{"type", "number"}, {"nullable", true}}},
                    {"threshold", {{"type", "number"}}},
                    {"samples", {{"type", "integer"}}},
                    {"verdicts",
                     {{"type", "array"}, {"items", {{"type", "string"}}}}}}}}}}}}}}}}}}}};
  alerts["responses"]["400"] = {{"description", "bad filter ({error, field})"}};
  paths["/api/v1/alerts"]["get"] = alerts;
  auto verdicts = op("Localized faults (verdicts): active ones, then ended ones", "listVerdicts");
  verdicts["parameters"] = nlohmann::json::array(
      {{{"name", "active"}, {"in", "query"}, {"schema", {{"type", "boolean"}}}},
       {{"name", "since"}, {"in", "query"}, {"schema", {{"type", "number"}}}}});
  paths["/api/v1/verdicts"]["get"] = verdicts;
  paths["/api/v1/alert-rules"]["get"] = op("Alert rules", "listAlertRules");
  auto create = with_body("Create an alert rule", "createAlertRule");
  create["responses"]["201"] = {{"description", "created"}};
  create["responses"]["409"] = {{"description", "a rule of that name exists"}};
  paths["/api/v1/alert-rules"]["post"] = create;
  paths["/api/v1/alert-rules"]["put"] = with_body("Replace every alert rule", "replaceAlertRules");
  auto prom = op("The rules as Prometheus alerting rules (YAML)", "prometheusAlertRules");
  paths["/api/v1/alert-rules/prometheus"]["get"] = prom;
  auto get = op("One alert rule", "getAlertRule");
  get["parameters"] = name_param;
  get["responses"]["404"] = {{"description", "no such rule"}};
  auto put = with_body("Create or replace one alert rule", "putAlertRule");
  put["parameters"] = name_param;
  auto del = op("Delete an alert rule (its alerts resolve)", "deleteAlertRule");
  del["parameters"] = name_param;
  del["responses"] = {{"204", {{"description", "deleted"}}},
                      {"404", {{"description", "no such rule"}}}};
  paths["/api/v1/alert-rules/{name}"]["get"] = get;
  paths["/api/v1/alert-rules/{name}"]["put"] = put;
  paths["/api/v1/alert-rules/{name}"]["delete"] = del;

  auto poll =
      op("Traceroute requests for an agent (taken off the queue): while a DC has a "
         "fabric_loss verdict, the sources of its worst cross-rack pairs are asked to "
         "trace their target from fixed source ports (docs/ANALYZER.md)",
         "takeTraceRequests");
  poll["tags"] = {"Agents"};
  poll["parameters"] = nlohmann::json::array(
      {{{"name", "agent"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}}});
  poll["responses"]["200"] = {
      {"description",
       "{\"requests\": [{id, dst, dport, sports, max_ttl, hop_attempts, loss_probes, "
       "timeout_ms}]}"},
      {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
  poll["responses"]["204"] = {{"description", "nothing to trace"}};
  poll["responses"]["401"] = {{"description", "agent token required"}};
  paths["/api/v1/traces/requests/{agent}"]["get"] = poll;
  auto upload = op("An agent's traceroute results", "uploadTraceResults");
  upload["tags"] = {"Agents"};
  upload["requestBody"] = {
      {"required", true},
      {"description",
       "{agent, results: [{id, dst, dport, duration_ms, ports: [{sport, hops (address per TTL, "
       "\"\" = no answer), reached, sent, answered, errors}]}]}"},
      {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
  upload["responses"]["200"] = {{"description",
                                 "{accepted, ignored}: ignored = unknown or "
                                 "expired request ids"}};
  upload["responses"]["400"] = {{"description", "malformed results ({error, field})"}};
  upload["responses"]["401"] = {{"description", "agent token required"}};
  paths["/api/v1/traces"]["post"] = upload;
  paths["/api/v1/traces"]["get"] =
      op("Traceroute aggregates per DC: per spine the traced probes and losses of the latest "
         "rounds, with the pairs and example ports",
         "listTraces");
  return {{"paths", paths},
          {"tags",
           nlohmann::json::array({{{"name", "analyzer"},
                                   {"description", "Alert rules, alerts and localized faults"}}})}};
}

}  // namespace pingmesh::analyze
