#include "analyze/notify.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "common/http.hpp"

namespace pingmesh::analyze {

namespace {

nlohmann::json alert_body(const Alert& a, const std::string& external_url) {
  return {
      {"labels", a.labels},
      {"annotations", a.annotations},
      {"startsAt", format_rfc3339(a.fired_ms > 0 ? a.fired_ms : a.active_since_ms)},
      {"generatorURL", external_url + "/api/v1/alerts?state=" + std::string(to_string(a.state))}};
}

}  // namespace

std::string format_rfc3339(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  int64_t ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

nlohmann::json webhook_payload(const std::vector<AlertEvent>& events,
                               const std::string& external_url) {
  auto alerts = nlohmann::json::array();
  bool firing = false;
  for (const auto& e : events) {
    const Alert& a = e.alert;
    auto j = alert_body(a, external_url);
    bool fires = e.kind == AlertEvent::Kind::kFiring;
    firing = firing || fires;
    j["status"] = fires ? "firing" : "resolved";
    j["endsAt"] = fires ? std::string("0001-01-01T00:00:00Z") : format_rfc3339(a.resolved_ms);
    j["fingerprint"] = a.fingerprint;
    j["id"] = a.id;
    j["value"] = std::isfinite(a.value) ? nlohmann::json(a.value) : nlohmann::json();
    j["verdicts"] = a.verdicts;
    alerts.push_back(std::move(j));
  }
  return {{"version", "1"},
          {"receiver", "pingmesh"},
          {"status", firing ? "firing" : "resolved"},
          {"alerts", alerts}};
}

nlohmann::json alertmanager_payload(const std::vector<Alert>& alerts, int64_t now_ms,
                                    int64_t resend_ms, const std::string& external_url) {
  auto out = nlohmann::json::array();
  for (const auto& a : alerts) {
    auto j = alert_body(a, external_url);
    j["endsAt"] =
        format_rfc3339(a.state == AlertState::kResolved ? a.resolved_ms : now_ms + 3 * resend_ms);
    out.push_back(std::move(j));
  }
  return out;
}

int64_t backoff_delay_ms(int attempt, int64_t backoff_ms, int64_t backoff_max_ms) {
  if (attempt < 1) return 0;
  int64_t d = backoff_ms;
  for (int i = 1; i < attempt && d < backoff_max_ms; ++i) d *= 2;
  return std::min(d, backoff_max_ms);
}

Notifier::Notifier(NotifyOptions options, metrics::Registry* registry)
    : options_(std::move(options)), registry_(registry) {
  for (const auto& url : options_.webhooks) targets_.push_back({url, false, {}, 0, {}});
  for (const auto& base : options_.alertmanagers) {
    std::string url = base;
    while (!url.empty() && url.back() == '/') url.pop_back();
    targets_.push_back({url + "/api/v2/alerts", true, {}, 0, {}});
  }
  next_resend_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.resend_ms);
}

Notifier::~Notifier() { stop(); }

void Notifier::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || targets_.empty()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Notifier::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::count(const Target& t, const char* outcome) {
  if (registry_ == nullptr) return;
  registry_
      ->counter("pingmesh_analyzer_notifications_total",
                "Alert notifications by target kind and outcome (sent, retried, dropped).",
                {{"target", t.alertmanager ? "alertmanager" : "webhook"}, {"outcome", outcome}})
      .inc();
}

void Notifier::push(Target& t, std::string body) {
  if (t.queue.size() >= options_.max_queue) {
    t.queue.pop_front();
    t.attempt = 0;
    ++stats_.dropped;
    count(t, "dropped");
  }
  if (t.queue.empty()) t.next_try = std::chrono::steady_clock::now();
  t.queue.push_back({std::move(body)});
}

void Notifier::enqueue(const std::vector<AlertEvent>& events) {
  if (events.empty() || targets_.empty()) return;
  int64_t now_ms = 0;
  std::vector<Alert> alerts;
  for (const auto& e : events) {
    alerts.push_back(e.alert);
    now_ms = std::max(now_ms, e.alert.updated_ms);
  }
  std::string webhook = webhook_payload(events, options_.external_url).dump();
  std::string am =
      alertmanager_payload(alerts, now_ms, options_.resend_ms, options_.external_url).dump();
  {
    std::lock_guard lock(mu_);
    for (const auto& e : events) {
      if (e.kind == AlertEvent::Kind::kFiring) {
        firing_[e.alert.fingerprint] = e.alert;
      } else {
        firing_.erase(e.alert.fingerprint);
      }
    }
    for (auto& t : targets_) push(t, t.alertmanager ? am : webhook);
  }
  cv_.notify_all();
}

void Notifier::restore_firing(const std::vector<Alert>& alerts) {
  std::lock_guard lock(mu_);
  for (const auto& a : alerts) {
    if (a.state == AlertState::kFiring) firing_[a.fingerprint] = a;
  }
}

NotifyStats Notifier::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Notifier::run() {
  http::Client client;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_resend_) {
      next_resend_ = now + std::chrono::milliseconds(options_.resend_ms);
      if (!firing_.empty()) {
        std::vector<Alert> alerts;
        for (const auto& [fp, a] : firing_) alerts.push_back(a);
        auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
        std::string body =
            alertmanager_payload(alerts, wall_ms, options_.resend_ms, options_.external_url).dump();
        for (auto& t : targets_) {
          if (t.alertmanager) push(t, body);
        }
      }
    }
    // The target whose head is due first.
    Target* due = nullptr;
    auto wake = next_resend_;
    for (auto& t : targets_) {
      if (t.queue.empty()) continue;
      if (t.next_try <= now && due == nullptr) due = &t;
      wake = std::min(wake, t.next_try);
    }
    if (due == nullptr) {
      cv_.wait_until(lock, wake);
      continue;
    }
    std::string body = due->queue.front().body;
    std::string url = due->url;
    lock.unlock();
    http::ClientRequest req;
    req.method = "POST";
    req.url = url;
    req.headers = {{"content-type", "application/json"}};
    req.body = std::move(body);
    req.timeout = std::chrono::milliseconds(options_.timeout_ms);
    auto resp = client.perform(req);
    lock.lock();
    if (due->queue.empty()) continue;  // dropped by a full queue meanwhile
    if (resp.status >= 200 && resp.status < 300) {
      due->queue.pop_front();
      due->attempt = 0;
      due->next_try = std::chrono::steady_clock::now();
      ++stats_.sent;
      count(*due, "sent");
      continue;
    }
    ++due->attempt;
    if (due->attempt >= options_.max_attempts) {
      spdlog::warn("analyzer: dropping a notification to {} after {} attempts (last: {})", url,
                   due->attempt, resp.status == 0 ? resp.error : std::to_string(resp.status));
      due->queue.pop_front();
      due->attempt = 0;
      due->next_try = std::chrono::steady_clock::now();
      ++stats_.dropped;
      count(*due, "dropped");
      continue;
    }
    ++stats_.retried;
    count(*due, "retried");
    due->next_try = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(backoff_delay_ms(due->attempt, options_.backoff_ms,
                                                               options_.backoff_max_ms));
  }
}

}  // namespace pingmesh::analyze
