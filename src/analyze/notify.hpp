#pragma once
/// Notifications of alert state changes: a JSON webhook and Prometheus Alertmanager's v2 API.
/// Payload building and the retry policy are pure; Notifier is the shell: one sender thread that
/// POSTs to every target in order (per target FIFO), retrying a failed delivery with
/// exponential backoff before the next one, and re-sending firing alerts to Alertmanager
/// periodically (Alertmanager expires alerts that are not refreshed).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "analyze/alerts.hpp"
#include "common/metrics.hpp"

namespace pingmesh::analyze {

/// Notification targets and the retry policy.
struct NotifyOptions {
  std::vector<std::string> webhooks;       ///< URLs receiving webhook_payload() by POST
  std::vector<std::string> alertmanagers;  ///< base URLs; alerts go to <base>/api/v2/alerts
  int max_attempts = 6;                    ///< per delivery, then it is dropped (counted)
  int64_t backoff_ms = 500;                ///< first retry delay, doubled each attempt
  int64_t backoff_max_ms = 30000;
  int64_t resend_ms = 60000;      ///< firing alerts are re-sent to Alertmanager this often
  int64_t timeout_ms = 5000;      ///< per HTTP request
  std::string external_url;       ///< base of generatorURL, e.g. http://pingmesh:9000
  std::size_t max_queue = 10000;  ///< deliveries waiting per target; beyond, the oldest drop
};

/// Unix ms as RFC 3339 UTC with milliseconds ("2024-05-01T12:00:00.123Z").
std::string format_rfc3339(int64_t unix_ms);

/// The webhook body: {"version":"1","receiver":"pingmesh","status":"firing"|"resolved",
/// "alerts":[{status, labels, annotations, startsAt, endsAt, generatorURL, fingerprint, id,
/// value, verdicts}]}. status is "firing" when any alert in it fires.
nlohmann::json webhook_payload(const std::vector<AlertEvent>& events,
                               const std::string& external_url);
/// The Alertmanager v2 body (POST /api/v2/alerts): [{labels, annotations, startsAt, endsAt,
/// generatorURL}]. Firing alerts get endsAt = now + 3 * resend_ms (refreshed by re-sends);
/// resolved alerts their resolution time.
nlohmann::json alertmanager_payload(const std::vector<Alert>& alerts, int64_t now_ms,
                                    int64_t resend_ms, const std::string& external_url);
/// Delay before retry number `attempt` (1 = first retry): backoff_ms * 2^(attempt-1), capped.
int64_t backoff_delay_ms(int attempt, int64_t backoff_ms, int64_t backoff_max_ms);

/// Counts of a notifier (for tests and metrics).
struct NotifyStats {
  uint64_t sent = 0;
  uint64_t retried = 0;
  uint64_t dropped = 0;
};

/// Thread-safe: enqueue() may be called from any thread.
class Notifier {
 public:
  /// Metrics pingmesh_analyzer_notifications_total{target,outcome} go to `registry` (may be null).
  Notifier(NotifyOptions options, metrics::Registry* registry);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  /// Starts the sender thread. Idempotent.
  void start();
  /// Stops it; undelivered notifications are dropped. Idempotent.
  void stop();
  /// Queues the state changes of one evaluation. Thread-safe, never blocks on the network.
  void enqueue(const std::vector<AlertEvent>& events);
  /// Alerts that were firing before a restart: re-sent to Alertmanager with the periodic
  /// re-sends (so it keeps them), not notified again to webhooks. Thread-safe.
  void restore_firing(const std::vector<Alert>& alerts);
  NotifyStats stats() const;
  bool enabled() const { return !options_.webhooks.empty() || !options_.alertmanagers.empty(); }

 private:
  struct Delivery {
    std::string body;
  };
  struct Target {
    std::string url;
    bool alertmanager = false;
    std::deque<Delivery> queue;
    int attempt = 0;                                 ///< failed attempts of the head
    std::chrono::steady_clock::time_point next_try;  ///< of the head
  };
  void run();
  void push(Target& t, std::string body);
  void count(const Target& t, const char* outcome);

  NotifyOptions options_;
  metrics::Registry* registry_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Target> targets_;
  std::map<std::string, Alert> firing_;  ///< by fingerprint, for Alertmanager re-sends
  std::chrono::steady_clock::time_point next_resend_;
  NotifyStats stats_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pingmesh::analyze
