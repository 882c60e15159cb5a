#include "analyze/alerts.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace pingmesh::analyze {

std::string_view to_string(AlertState s) {
  switch (s) {
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
    case AlertState::kResolved:
      return "resolved";
  }
  return "unknown";
}

std::optional<AlertState> parse_alert_state(std::string_view s) {
  if (s == "pending") return AlertState::kPending;
  if (s == "firing") return AlertState::kFiring;
  if (s == "resolved") return AlertState::kResolved;
  return std::nullopt;
}

nlohmann::json to_json(const Alert& a) {
  nlohmann::json j = {
      {"id", a.id},
      {"rule", a.rule},
      {"fingerprint", a.fingerprint},
      {"scope", a.scope},
      {"state", to_string(a.state)},
      {"labels", a.labels},
      {"annotations", a.annotations},
      {"active_since_ms", a.active_since_ms},
      {"updated_ms", a.updated_ms},
      {"value", std::isfinite(a.value) ? nlohmann::json(a.value) : nlohmann::json()},
      {"threshold", a.threshold},
      {"samples", a.samples},
      {"verdicts", a.verdicts}};
  j["fired_ms"] = a.fired_ms > 0 ? nlohmann::json(a.fired_ms) : nlohmann::json();
  j["resolved_ms"] = a.resolved_ms > 0 ? nlohmann::json(a.resolved_ms) : nlohmann::json();
  return j;
}

bool AlertQuery::matches(const Alert& a) const {
  bool active = a.state != AlertState::kResolved;
  if (active_only && !active) return false;
  if (state && a.state != *state) return false;
  if (a.updated_ms < since_ms || a.active_since_ms > until_ms) return false;
  if (!rule.empty() && a.rule != rule) return false;
  if (!scope.empty() && a.scope != scope) return false;
  if (!severity.empty()) {
    auto it = a.labels.find("severity");
    if (it == a.labels.end() || it->second != severity) return false;
  }
  for (const auto& [k, v] : labels) {
    auto it = a.labels.find(k);
    if (it == a.labels.end() || it->second != v) return false;
  }
  return true;
}

void sort_alerts(std::vector<Alert>* alerts, std::size_t limit) {
  std::unordered_set<uint64_t> seen;
  std::vector<Alert> out;
  out.reserve(alerts->size());
  for (auto& a : *alerts) {
    if (seen.insert(a.id).second) out.push_back(std::move(a));
  }
  std::stable_sort(out.begin(), out.end(), [](const Alert& x, const Alert& y) {
    return x.updated_ms != y.updated_ms ? x.updated_ms > y.updated_ms : x.id > y.id;
  });
  if (out.size() > limit) out.resize(limit);
  *alerts = std::move(out);
}

void AlertBook::finish(std::unordered_map<std::string, Alert>::iterator it, int64_t now_ms,
                       std::vector<AlertEvent>* events) {
  Alert a = std::move(it->second);
  active_.erase(it);
  if (a.state == AlertState::kPending) return;  // never notified, not worth keeping
  a.state = AlertState::kResolved;
  a.resolved_ms = now_ms;
  a.updated_ms = now_ms;
  events->push_back({AlertEvent::Kind::kResolved, a});
  history_.push_back(std::move(a));
  while (history_.size() > max_history_) history_.pop_front();
}

void AlertBook::apply(const RuleSpec& rule, const std::vector<Instance>& instances, int64_t now_ms,
                      std::vector<AlertEvent>* events) {
  std::unordered_set<std::string> seen;
  seen.reserve(instances.size());
  for (const auto& inst : instances) {
    std::string fp = rule.name + "|" + inst.key;
    seen.insert(fp);
    auto it = active_.find(fp);
    const Condition& c = inst.condition;
    if (it == active_.end()) {
      if (!c.breach) continue;
      Alert a;
      a.id = next_id_++;
      a.rule = rule.name;
      a.fingerprint = fp;
      a.scope = inst.scope.empty() ? rule.scope : inst.scope;
      a.labels = inst.labels;
      for (const auto& [k, v] : rule.labels) a.labels.emplace(k, v);
      a.labels["alertname"] = rule.alertname;
      a.labels["severity"] = rule.severity;
      a.labels["rule"] = rule.name;
      a.state = AlertState::kPending;
      a.active_since_ms = now_ms;
      a.threshold = rule.threshold;
      if (!rule.description.empty()) a.annotations["description"] = rule.description;
      it = active_.emplace(fp, std::move(a)).first;
    }
    Alert& a = it->second;
    if (c.breach) {
      a.last_breach_ms = now_ms;
      a.value = c.value;
      a.samples = c.samples;
      a.updated_ms = now_ms;
      a.verdicts = inst.verdicts;
      if (!inst.summary.empty()) a.annotations["summary"] = inst.summary;
      if (a.state == AlertState::kPending && now_ms - a.active_since_ms >= rule.for_ms) {
        a.state = AlertState::kFiring;
        a.fired_ms = now_ms;
        events->push_back({AlertEvent::Kind::kFiring, a});
      }
      continue;
    }
    bool held = now_ms < a.hold_until_ms;
    if (a.state == AlertState::kPending || (c.clear && !held) ||
        (now_ms - a.last_breach_ms >= rule.hold_ms && !held)) {
      if (c.clear) {
        a.value = c.value;
        a.samples = c.samples;
      }
      finish(it, now_ms, events);
    }
  }
  // Instances no longer evaluated (no data at all) hold, then resolve after hold_ms.
  for (auto it = active_.begin(); it != active_.end();) {
    auto next = std::next(it);
    if (it->second.rule == rule.name && !seen.contains(it->first) &&
        (it->second.state == AlertState::kPending ||
         (now_ms - it->second.last_breach_ms >= rule.hold_ms &&
          now_ms >= it->second.hold_until_ms))) {
      finish(it, now_ms, events);
    }
    it = next;
  }
}

void AlertBook::resolve_rule(const std::string& rule, int64_t now_ms,
                             std::vector<AlertEvent>* events) {
  for (auto it = active_.begin(); it != active_.end();) {
    auto next = std::next(it);
    if (it->second.rule == rule) finish(it, now_ms, events);
    it = next;
  }
}

std::vector<Alert> AlertBook::list(std::optional<AlertState> state, bool active_only,
                                   int64_t since_ms, std::size_t limit) const {
  std::vector<Alert> out;
  auto want = [&](const Alert& a) {
    return (!state || a.state == *state) && a.updated_ms >= since_ms;
  };
  for (const auto& [fp, a] : active_) {
    if (want(a)) out.push_back(a);
  }
  if (!active_only) {
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      if (want(*it)) out.push_back(*it);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Alert& x, const Alert& y) {
    return x.updated_ms != y.updated_ms ? x.updated_ms > y.updated_ms : x.id > y.id;
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

std::vector<Alert> AlertBook::list(const AlertQuery& q) const {
  std::vector<Alert> out;
  for (const auto& [fp, a] : active_) {
    if (q.matches(a)) out.push_back(a);
  }
  if (!q.active_only) {
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      if (q.matches(*it)) out.push_back(*it);
    }
  }
  sort_alerts(&out, q.limit);
  return out;
}

void AlertBook::restore(const std::vector<Alert>& active, uint64_t next_id, int64_t hold_until_ms) {
  next_id_ = std::max(next_id_, next_id);
  for (const auto& a : active) {
    if (a.state != AlertState::kFiring || active_.contains(a.fingerprint)) continue;
    Alert copy = a;
    copy.hold_until_ms = hold_until_ms;
    next_id_ = std::max(next_id_, copy.id + 1);
    active_.emplace(copy.fingerprint, std::move(copy));
  }
}

void AlertBook::for_each_active(const std::function<void(Alert&)>& fn) {
  for (auto& [fp, a] : active_) fn(a);
}

}  // namespace pingmesh::analyze
