#include "analyze/engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace pingmesh::analyze {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Counts counts_of(const Agg& a) {
  Counts c;
  c.probes = a.stats.probes;
  c.answered = a.stats.successes();
  c.failures = a.stats.failures();
  c.lost = a.stats.lost;
  c.loss_base = a.stats.loss_base;
  c.ok = a.stats.ok;
  c.slow = a.slow;
  return c;
}

double ratio(uint64_t k, uint64_t n) {
  return n == 0 ? kNaN : static_cast<double>(k) / static_cast<double>(n);
}

/// The quantile at 0-based ascending rank `rank` of a sketch of n values.
double at_rank(const collector::Sketch& s, uint64_t rank) {
  uint64_t n = s.count();
  if (n <= 1) return s.quantile(0);
  double q = (static_cast<double>(rank) + 0.5) / static_cast<double>(n - 1);
  return s.quantile(std::min(1.0, q));
}

std::string severity_of_kind(std::string_view kind) {
  if (kind == "server_problem" || kind == "server_down" || kind == "rack_problem" ||
      kind == "fabric_latency" || kind == "dc_latency" || kind == "inter_dc_link") {
    return "warning";
  }
  return "critical";
}

/// Whether a verdict explains an alert instance with these labels.
bool overlaps(const LabelMap& labels, const Verdict& v) {
  auto get = [&](const char* k) -> std::string {
    auto it = labels.find(k);
    return it == labels.end() ? std::string{} : it->second;
  };
  std::string server = get("server"), rack = get("rack"), dc = get("dc");
  std::string src_dc = get("src_dc"), dst_dc = get("dst_dc");
  std::string src_rack = get("src_rack"), dst_rack = get("dst_rack");
  bool dc_wide = v.type == ComponentType::kSpineLayer || v.type == ComponentType::kSpine ||
                 v.type == ComponentType::kDc;
  if (!server.empty()) {
    return v.server == server || (v.type == ComponentType::kRack && v.rack == rack && v.dc == dc) ||
           (dc_wide && v.dc == dc);
  }
  if (!rack.empty()) {
    return (v.dc == dc && (v.rack == rack || dc_wide));
  }
  if (!src_rack.empty()) {
    return (v.dc == src_dc && (v.rack == src_rack || dc_wide)) ||
           (v.dc == dst_dc && (v.rack == dst_rack || dc_wide)) ||
           (v.type == ComponentType::kInterDc &&
            ((v.dc == src_dc && v.peer_dc == dst_dc) || (v.dc == dst_dc && v.peer_dc == src_dc)));
  }
  if (!src_dc.empty()) {
    if (v.type == ComponentType::kInterDc) {
      return (v.dc == src_dc && v.peer_dc == dst_dc) || (v.dc == dst_dc && v.peer_dc == src_dc);
    }
    return dc_wide && (v.dc == src_dc || v.dc == dst_dc);
  }
  if (!dc.empty()) return v.dc == dc || v.peer_dc == dc;
  return true;  // global
}

}  // namespace

nlohmann::json to_json(const VerdictRecord& r) {
  auto j = to_json(r.verdict);
  j["first_ms"] = r.first_ms;
  j["last_ms"] = r.last_ms;
  j["active"] = r.active;
  return j;
}

const std::vector<std::string>& verdict_kinds() {
  static const std::vector<std::string> kinds = {
      "server_down",    "server_problem",    "rack_down",    "rack_problem",
      "tor_black_hole", "fabric_black_hole", "fabric_loss",  "fabric_latency",
      "dc_loss",        "dc_latency",        "inter_dc_link"};
  return kinds;
}

std::string alertname_of_kind(std::string_view kind) {
  std::string out;
  bool up = true;
  for (char c : kind) {
    if (c == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

Engine::Engine(EngineOptions options)
    : options_(options), windows_(options.windows), book_(options.max_alert_history) {}

void Engine::set_rules(std::vector<AlertRule> rules, int64_t now_ms,
                       std::vector<AlertEvent>* events) {
  for (const auto& old : rules_) {
    auto it = std::find_if(rules.begin(), rules.end(),
                           [&](const AlertRule& r) { return r.name == old.name; });
    if (it == rules.end() || !it->enabled || *it != old)
      book_.resolve_rule(old.name, now_ms, events);
  }
  rules_ = std::move(rules);
  bool server = false, rack_pair = false;
  for (const auto& r : rules_) {
    if (!r.enabled || !is_latency(r.metric)) continue;
    server = server || r.scope == Scope::kServer;
    rack_pair = rack_pair || r.scope == Scope::kRackPair;
  }
  windows_.set_sketch(WLevel::kServerSrc, server);
  windows_.set_sketch(WLevel::kServerDst, server);
  windows_.set_sketch(WLevel::kRackPair, rack_pair);
}

void Engine::set_topology(const model::Topology& topology) {
  windows_.directory().set_expected(topology);
}

const AggMap& Engine::sums(WLevel level, int64_t now_ms, int64_t window_ms, bool sketch) const {
  if (sums_at_ms_ != now_ms || sums_generation_ != generation_) {
    sums_.clear();
    sums_at_ms_ = now_ms;
    sums_generation_ = generation_;
  }
  auto key = std::make_tuple(static_cast<int>(level), window_ms, sketch);
  auto it = sums_.find(key);
  if (it != sums_.end()) return it->second;
  // A sketch sum also serves counter-only requests of the same window.
  if (!sketch) {
    auto with = sums_.find(std::make_tuple(static_cast<int>(level), window_ms, true));
    if (with != sums_.end()) return with->second;
  }
  auto& out = sums_[key];
  windows_.sum(level, now_ms, window_ms, sketch, &out);
  return out;
}

bool Engine::known_for_rules(uint32_t server, int64_t now_ms, int64_t window_ms) const {
  const auto& act = windows_.activity();
  if (server >= act.size() || act[server].first_seen_ms == 0 ||
      now_ms - act[server].first_seen_ms < window_ms) {
    return false;
  }
  int64_t last = std::max(act[server].last_batch_ms, act[server].last_answer_ms);
  return windows_.directory().expected(server) || now_ms - last <= options_.known_ms;
}

void Engine::restore_alerts(const std::vector<Alert>& active, uint64_t next_id, int64_t now_ms,
                            int64_t grace_ms, std::vector<AlertEvent>* events) {
  book_.restore(active, next_id, now_ms + grace_ms);
  std::set<std::string> gone;
  for (const auto& a : active) {
    bool known = false;
    if (a.rule.starts_with("localization/")) {
      auto kind = a.rule.substr(std::string_view("localization/").size());
      const auto& kinds = verdict_kinds();
      known = options_.run_detectors && std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
    } else {
      known = std::any_of(rules_.begin(), rules_.end(),
                          [&](const AlertRule& r) { return r.enabled && r.name == a.rule; });
    }
    if (!known) gone.insert(a.rule);
  }
  for (const auto& rule : gone) book_.resolve_rule(rule, now_ms, events);
}

void Engine::evaluate(int64_t now_ms, std::vector<AlertEvent>* events) {
  windows_.advance(now_ms);
  evaluate_faults(now_ms, events);
  for (const auto& rule : rules_) {
    if (rule.enabled) evaluate_rule(rule, now_ms, events);
  }
}

void Engine::evaluate_rule(const AlertRule& rule, int64_t now_ms, std::vector<AlertEvent>* events) {
  const auto& dir = windows_.directory();
  int64_t window_ms = rule.window_s * 1000;
  bool latency = is_latency(rule.metric);
  auto proto = static_cast<uint8_t>(rule.protocol);
  Significance sig{options_.localize.significance.z, rule.min_samples, rule.min_events};
  double q = quantile_of(rule.metric);
  double threshold_us = rule.threshold * 1000;

  RuleSpec spec;
  spec.name = rule.name;
  spec.alertname = rule.name;
  spec.severity = rule.severity;
  spec.for_ms = rule.for_s * 1000;
  spec.hold_ms = window_ms;
  spec.threshold = rule.threshold;
  spec.labels = rule.labels;
  spec.description = rule.description;
  spec.scope = std::string(to_string(rule.scope));

  std::vector<Instance> instances;
  auto unit = [&](double v) {
    if (std::isnan(v)) return std::string("n/a");
    if (latency) return fmt::format("{:.3f} ms", v);
    if (rule.metric == Metric::kNoData) return fmt::format("{:.0f} answered", v);
    return fmt::format("{:.4f} %", 100 * v);
  };
  auto consider = [&](std::string key, LabelMap labels, const Agg* agg) {
    for (const auto& [k, v] : rule.match) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return;
    }
    bool active = book_.is_active(rule.name + "|" + key);
    Condition c;
    c.value = kNaN;
    switch (rule.metric) {
      case Metric::kLoss:
      case Metric::kFailureRate: {
        if (agg == nullptr) break;
        bool loss = rule.metric == Metric::kLoss;
        uint64_t k = loss ? agg->stats.lost : agg->stats.failures();
        uint64_t n = loss ? agg->stats.loss_base : agg->stats.probes;
        c.samples = n;
        c.value = ratio(k, n);
        c.breach = significantly_above(k, n, rule.threshold, sig);
        c.clear = !c.breach && n > 0 && c.value <= rule.threshold;
        break;
      }
      case Metric::kP50:
      case Metric::kP99:
      case Metric::kP999: {
        if (agg == nullptr) break;
        const auto& sk = agg->stats.rtt;
        uint64_t n = sk.count();
        c.samples = n;
        if (n < rule.min_samples) break;
        if (sk.max() <= threshold_us) {
          c.clear = true;
          if (active) c.value = sk.quantile(q) / 1000;
          break;
        }
        uint64_t need = min_significant_count(n, 1 - q, sig);
        c.value = sk.quantile(q) / 1000;
        c.breach = need <= n && at_rank(sk, n - need) > threshold_us;
        c.clear = !c.breach && c.value <= rule.threshold;
        break;
      }
      case Metric::kNoData: {
        uint64_t answered = agg == nullptr ? 0 : agg->stats.successes();
        c.samples = answered;
        c.value = static_cast<double>(answered);
        c.breach = answered == 0;
        c.clear = answered > 0;
        break;
      }
    }
    if (!c.breach && !active) return;
    Instance inst;
    inst.key = std::move(key);
    labels["scope"] = std::string(to_string(rule.scope));
    labels["protocol"] = std::string(collector::to_string(rule.protocol));
    labels["metric"] = std::string(to_string(rule.metric));
    for (const auto& [k, rec] : verdicts_) {
      if (overlaps(labels, rec.verdict)) inst.verdicts.push_back(rec.verdict.component);
    }
    inst.summary =
        rule.metric == Metric::kNoData
            ? fmt::format("{}: no answered probe for {} s ({})", rule.name, rule.window_s, inst.key)
            : fmt::format("{}: {} {} (threshold {}, {} samples, {})", rule.name,
                          to_string(rule.metric), unit(c.value),
                          unit(latency ? rule.threshold : rule.threshold), c.samples, inst.key);
    inst.labels = std::move(labels);
    inst.condition = c;
    instances.push_back(std::move(inst));
  };

  auto level_of = [&](Scope s) {
    switch (s) {
      case Scope::kRack:
        return WLevel::kRack;
      case Scope::kRackPair:
        return WLevel::kRackPair;
      default:
        return WLevel::kDcPair;
    }
  };
  bool sketch = latency;
  bool no_data = rule.metric == Metric::kNoData;
  switch (rule.scope) {
    case Scope::kGlobal: {
      Agg total;
      bool any = false;
      for (const auto& [k, a] : sums(WLevel::kDcPair, now_ms, window_ms, sketch)) {
        if (k.protocol != proto) continue;
        total.merge(a, sketch);
        any = true;
      }
      if (no_data && !any) {
        bool before = false;
        for (const auto& [k, a] : sums(WLevel::kDcPair, now_ms, windows_.horizon_ms(), false)) {
          before = before || k.protocol == proto;
        }
        if (!before) break;
      }
      consider("global", {}, any ? &total : nullptr);
      break;
    }
    case Scope::kDc:
    case Scope::kDcPair:
    case Scope::kRackPair: {
      WLevel level = level_of(rule.scope);
      const auto& now_sums = sums(level, now_ms, window_ms, sketch);
      auto visit = [&](const collector::Key& k, const Agg* a) {
        if (k.protocol != proto) return;
        if (rule.scope == Scope::kDc) {
          if (k.a != k.b) return;
          consider("dc=" + dir.dc_name(k.a), {{"dc", dir.dc_name(k.a)}}, a);
        } else if (rule.scope == Scope::kDcPair) {
          if (k.a == k.b) return;
          consider(fmt::format("src_dc={},dst_dc={}", dir.dc_name(k.a), dir.dc_name(k.b)),
                   {{"src_dc", dir.dc_name(k.a)}, {"dst_dc", dir.dc_name(k.b)}}, a);
        } else {
          const auto& sdc = dir.dc_name(dir.rack_dc(k.a));
          const auto& ddc = dir.dc_name(dir.rack_dc(k.b));
          consider(fmt::format("src_rack={}/{},dst_rack={}/{}", sdc, dir.rack_name(k.a), ddc,
                               dir.rack_name(k.b)),
                   {{"src_dc", sdc},
                    {"src_rack", dir.rack_name(k.a)},
                    {"dst_dc", ddc},
                    {"dst_rack", dir.rack_name(k.b)}},
                   a);
        }
      };
      if (no_data) {
        // Instances that had data earlier in the horizon but none in the window.
        for (const auto& [k, a] : sums(level, now_ms, windows_.horizon_ms(), false)) {
          auto it = now_sums.find(k);
          visit(k, it == now_sums.end() ? nullptr : &it->second);
        }
      } else {
        for (const auto& [k, a] : now_sums) visit(k, &a);
      }
      break;
    }
    case Scope::kRack: {
      const auto& now_sums = sums(WLevel::kRack, now_ms, window_ms, sketch);
      auto visit = [&](uint32_t rack, const Agg* a) {
        const auto& dc = dir.dc_name(dir.rack_dc(rack));
        consider(fmt::format("rack={}/{}", dc, dir.rack_name(rack)),
                 {{"dc", dc}, {"rack", dir.rack_name(rack)}}, a);
      };
      if (no_data) {
        std::vector<bool> known(dir.rack_count(), false);
        for (uint32_t i = 0; i < dir.server_count(); ++i) {
          if (dir.server_rack(i) != Directory::kNone && known_for_rules(i, now_ms, window_ms)) {
            known[dir.server_rack(i)] = true;
          }
        }
        for (uint32_t r = 0; r < dir.rack_count(); ++r) {
          if (!known[r]) continue;
          auto it = now_sums.find(collector::Key{r, 0, proto, 0});
          visit(r, it == now_sums.end() ? nullptr : &it->second);
        }
      } else {
        for (const auto& [k, a] : now_sums) {
          if (k.protocol == proto) visit(k.a, &a);
        }
      }
      break;
    }
    case Scope::kServer: {
      const auto& src = sums(WLevel::kServerSrc, now_ms, window_ms, sketch);
      const auto& dst = sums(WLevel::kServerDst, now_ms, window_ms, sketch);
      for (uint32_t i = 0; i < dir.server_count(); ++i) {
        auto si = src.find(collector::Key{i, 0, proto, 0});
        auto di = dst.find(collector::Key{i, 0, proto, 0});
        bool has = si != src.end() || di != dst.end();
        if (!has && !(no_data && known_for_rules(i, now_ms, window_ms))) continue;
        Agg merged;
        if (si != src.end()) merged.merge(si->second, sketch);
        if (di != dst.end()) merged.merge(di->second, sketch);
        uint32_t rack = dir.server_rack(i);
        consider("server=" + dir.server_name(i),
                 {{"dc", dir.dc_name(dir.server_dc(i))},
                  {"rack", rack == Directory::kNone ? std::string{} : dir.rack_name(rack)},
                  {"server", dir.server_name(i)}},
                 has ? &merged : nullptr);
      }
      break;
    }
  }
  book_.apply(spec, instances, now_ms, events);
}

Snapshot Engine::snapshot(int64_t now_ms) const {
  const auto& dir = windows_.directory();
  const auto& act = windows_.activity();
  auto proto = static_cast<uint8_t>(options_.protocol);
  int64_t window = options_.localize_window_ms;
  Snapshot s;
  s.dcs.resize(dir.dc_count());
  for (uint32_t d = 0; d < dir.dc_count(); ++d) s.dcs[d].name = dir.dc_name(d);
  s.racks.resize(dir.rack_count());
  for (uint32_t r = 0; r < dir.rack_count(); ++r) {
    s.racks[r].name = dir.rack_name(r);
    s.racks[r].dc = dir.rack_dc(r);
    s.dcs[dir.rack_dc(r)].racks.push_back(r);
  }
  s.servers.resize(dir.server_count());
  for (uint32_t i = 0; i < dir.server_count(); ++i) {
    auto& srv = s.servers[i];
    srv.name = dir.server_name(i);
    srv.dc = dir.server_dc(i);
    srv.rack = dir.server_rack(i);
    if (srv.rack != Directory::kNone) s.racks[srv.rack].servers.push_back(i);
    if (i < act.size() && act[i].first_seen_ms > 0) {
      int64_t last = std::max(act[i].last_batch_ms, act[i].last_answer_ms);
      srv.known = dir.expected(i) || now_ms - last <= options_.known_ms;
      srv.batch_age_ms = act[i].last_batch_ms > 0 ? now_ms - act[i].last_batch_ms : -1;
      srv.answer_age_ms = act[i].last_answer_ms > 0 ? now_ms - act[i].last_answer_ms : -1;
    } else {
      srv.known = dir.expected(i);
    }
  }
  for (const auto& [k, a] : sums(WLevel::kServerSrc, now_ms, window, false)) {
    if (k.protocol == proto) s.servers[k.a].as_src = counts_of(a);
  }
  for (const auto& [k, a] : sums(WLevel::kServerDst, now_ms, window, false)) {
    if (k.protocol == proto) s.servers[k.a].as_dst = counts_of(a);
  }
  const auto& pairs = sums(WLevel::kRackPair, now_ms, window, false);
  s.rack_pairs.reserve(pairs.size());
  for (const auto& [k, a] : pairs) {
    if (k.protocol == proto) s.rack_pairs.push_back({k.a, k.b, counts_of(a)});
  }
  std::map<std::pair<uint32_t, uint32_t>, Agg> links;
  for (const auto& [k, a] : sums(WLevel::kDcPair, now_ms, window, true)) {
    if (k.protocol != proto || k.a == k.b) continue;
    links[{std::min(k.a, k.b), std::max(k.a, k.b)}].merge(a, true);
  }
  for (const auto& [ab, a] : links) {
    DcLink l;
    l.a = ab.first;
    l.b = ab.second;
    l.counts = counts_of(a);
    l.p50_us = a.stats.rtt.empty() ? 0 : a.stats.rtt.quantile(0.5);
    auto it = baselines_.find(ab);
    l.baseline_p50_us = it == baselines_.end() ? 0 : it->second.first;
    s.links.push_back(l);
  }
  for (const auto& [k, t] : windows_.pairs()) {
    if (k.protocol != proto) continue;
    FailingPair p;
    p.src = k.a;
    p.dst = k.b;
    p.failures = t.failures;
    p.successes_after = t.successes_after;
    // Both ends worked while the pair failed: answers after its first failure, in a streak that
    // began before its last failure (not a server or rack coming back after an outage).
    // Per protocol: a host whose agent is gone still answers ICMP, not TCP/UDP/HTTP.
    const auto& reaching = act[k.a].reaching[k.protocol];
    const auto& answering = act[k.b].answering[k.protocol];
    p.src_reaches_others =
        reaching.last_ts_us > t.first_fail_us && reaching.since_us < t.last_fail_us;
    p.dst_answers_others =
        answering.last_ts_us > t.first_fail_us && answering.since_us < t.last_fail_us;
    s.failing.push_back(p);
  }
  return s;
}

void Engine::evaluate_faults(int64_t now_ms, std::vector<AlertEvent>* events) {
  if (!options_.run_detectors) return;
  Snapshot snap = snapshot(now_ms);
  auto found = localize(snap, options_.localize);
  for (auto& v : found) {
    if (v.kind != "fabric_loss" || v.type != ComponentType::kSpineLayer) continue;
    auto it = spine_traces_.find(v.dc);
    if (it == spine_traces_.end()) continue;
    auto narrowed = narrow_to_spine(v, it->second.spines, options_.localize);
    if (narrowed.empty()) {
      v.evidence["traceroute"] = it->second.evidence;
      continue;
    }
    v = std::move(narrowed.front());
    v.evidence["traced"] = it->second.evidence;
  }

  for (auto& [k, rec] : verdicts_) rec.active = false;
  for (const auto& v : found) {
    auto [it, inserted] = verdicts_.try_emplace(v.kind + "|" + v.component);
    if (inserted) it->second.first_ms = now_ms;
    it->second.verdict = v;
    it->second.last_ms = now_ms;
    it->second.active = true;
  }
  for (auto it = verdicts_.begin(); it != verdicts_.end();) {
    if (it->second.active) {
      ++it;
      continue;
    }
    verdict_history_.push_back(std::move(it->second));
    while (verdict_history_.size() > options_.max_verdict_history) verdict_history_.pop_front();
    it = verdicts_.erase(it);
  }

  for (const auto& kind : verdict_kinds()) {
    RuleSpec spec;
    spec.name = "localization/" + kind;
    spec.alertname = alertname_of_kind(kind);
    spec.severity = severity_of_kind(kind);
    spec.for_ms = options_.verdict_for_ms;
    spec.hold_ms = options_.verdict_hold_ms;
    spec.description = "Fault localized by pingmesh from the probe results (" + kind + ")";
    std::vector<Instance> instances;
    for (const auto& v : found) {
      if (v.kind != kind) continue;
      Instance inst;
      inst.key = v.component;
      inst.labels = {{"kind", v.kind},
                     {"component", v.component},
                     {"component_type", std::string(to_string(v.type))},
                     {"dc", v.dc}};
      if (!v.peer_dc.empty()) inst.labels["peer_dc"] = v.peer_dc;
      if (!v.rack.empty()) inst.labels["rack"] = v.rack;
      if (!v.server.empty()) inst.labels["server"] = v.server;
      inst.condition.breach = true;
      inst.condition.value = v.confidence;
      inst.summary = v.summary;
      inst.verdicts = {v.component};
      inst.scope = std::string(to_string(v.type));
      instances.push_back(std::move(inst));
    }
    book_.apply(spec, instances, now_ms, events);
  }

  // Learn the inter-DC medians while their links are not blamed.
  for (const auto& l : snap.links) {
    if (l.p50_us <= 0 || l.counts.ok < options_.localize.interdc_min_answers) continue;
    const auto& x = snap.dcs[l.a].name;
    const auto& y = snap.dcs[l.b].name;
    std::string component = fmt::format("inter_dc:{}~{}", std::min(x, y), std::max(x, y));
    if (verdicts_.contains("inter_dc_link|" + component)) continue;
    auto& [base, at] = baselines_[{l.a, l.b}];
    if (base <= 0) {
      base = l.p50_us;
    } else {
      double alpha =
          std::min(1.0, static_cast<double>(now_ms - at) / 1000.0 / options_.baseline_tau_s);
      base += alpha * (l.p50_us - base);
    }
    at = now_ms;
  }
}

std::vector<VerdictRecord> Engine::verdicts(bool active_only, int64_t since_ms) const {
  std::vector<VerdictRecord> out;
  for (const auto& [k, rec] : verdicts_) out.push_back(rec);
  std::sort(out.begin(), out.end(), [](const VerdictRecord& a, const VerdictRecord& b) {
    return a.first_ms != b.first_ms ? a.first_ms > b.first_ms
                                    : a.verdict.component < b.verdict.component;
  });
  if (active_only) return out;
  for (auto it = verdict_history_.rbegin(); it != verdict_history_.rend(); ++it) {
    if (it->last_ms >= since_ms) out.push_back(*it);
  }
  return out;
}

std::vector<SeriesValue> Engine::series(int64_t now_ms) const {
  const auto& dir = windows_.directory();
  int64_t window = options_.localize_window_ms;
  std::vector<SeriesValue> out;
  auto make = [&](LabelMap labels, const Agg& a) {
    SeriesValue v;
    v.labels = std::move(labels);
    v.probes = a.stats.probes;
    v.answered = a.stats.successes();
    v.loss = ratio(a.stats.lost, a.stats.loss_base);
    v.failure = ratio(a.stats.failures(), a.stats.probes);
    bool none = a.stats.rtt.empty();
    v.p50_s = none ? kNaN : a.stats.rtt.quantile(0.5) / 1e6;
    v.p99_s = none ? kNaN : a.stats.rtt.quantile(0.99) / 1e6;
    v.p999_s = none ? kNaN : a.stats.rtt.quantile(0.999) / 1e6;
    out.push_back(std::move(v));
  };
  std::map<uint8_t, Agg> global;
  for (const auto& [k, a] : sums(WLevel::kDcPair, now_ms, window, true)) {
    std::string protocol(collector::to_string(static_cast<collector::Protocol>(k.protocol)));
    global[k.protocol].merge(a, true);
    if (k.a == k.b) {
      make({{"scope", "dc"}, {"protocol", protocol}, {"dc", dir.dc_name(k.a)}}, a);
    } else {
      make({{"scope", "dc_pair"},
            {"protocol", protocol},
            {"src_dc", dir.dc_name(k.a)},
            {"dst_dc", dir.dc_name(k.b)}},
           a);
    }
  }
  for (const auto& [p, a] : global) {
    make({{"scope", "global"},
          {"protocol", std::string(collector::to_string(static_cast<collector::Protocol>(p)))}},
         a);
  }
  for (const auto& [k, a] : sums(WLevel::kRack, now_ms, window, true)) {
    make({{"scope", "rack"},
          {"protocol",
           std::string(collector::to_string(static_cast<collector::Protocol>(k.protocol)))},
          {"dc", dir.dc_name(dir.rack_dc(k.a))},
          {"rack", dir.rack_name(k.a)}},
         a);
  }
  return out;
}

}  // namespace pingmesh::analyze
