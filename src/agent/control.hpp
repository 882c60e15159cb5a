#pragma once
/// The agent's control plane: heartbeats to the controller and pinglist pulls (If-None-Match,
/// pulled, never pushed). PullTracker is the pure decision core; Control is its thread.
///
/// Rules (the paper's safety valve): after `max_failed_pulls` consecutive failed pulls, on a 404
/// (no pinglist for this agent), or on a pinglist with stopped="true" (kill switch), all peers
/// are dropped and probing stops while the responders keep answering; the next good pinglist
/// resumes probing. A malformed pinglist is logged once per version, counted, and ignored: the
/// last good one stays (the controller answered, so it is not a failed pull).

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/metrics.hpp"
#include "common/http.hpp"
#include "model/pinglist.hpp"

namespace pingmesh::agent {

/// What one pull returned.
enum class PullResult { kOk, kNotModified, kNotFound, kFailed, kMalformed, kStopped };
/// What the agent must do about it.
enum class PullAction { kNone, kApply, kStop };

class PullTracker {
 public:
  explicit PullTracker(uint32_t max_failures = 3)
      : max_failures_(max_failures ? max_failures : 1) {}
  PullAction on_result(PullResult r);
  bool probing() const { return probing_; }
  uint32_t consecutive_failures() const { return failures_; }

 private:
  uint32_t max_failures_;
  uint32_t failures_ = 0;
  bool probing_ = false;
};

struct ControlOptions {
  std::string server_url = "http://127.0.0.1:9000";
  std::string token;
  std::string name;
  std::string hostname;
  std::vector<std::string> addresses;
  std::string dc;  ///< hint; empty = not sent
  std::string version;
  std::vector<std::string> capabilities;
  uint32_t heartbeat_interval_ms = 10000;
  uint32_t pull_interval_ms = 10000;
  uint32_t max_failed_pulls = 3;
  uint32_t request_timeout_ms = 5000;
};

/// The heartbeat body: {"name","hostname","addresses","version","capabilities","dc"?}.
std::string heartbeat_json(const ControlOptions& o);

/// Runs heartbeats and pulls on one thread and hands pinglists to `apply` (nullptr = stop).
class Control {
 public:
  using Apply = std::function<void(std::shared_ptr<const model::Pinglist>)>;
  Control(ControlOptions options, AgentMetrics& metrics, Apply apply);
  ~Control();
  void start();
  void stop();

  bool probing() const { return probing_; }
  uint32_t consecutive_failures() const { return failures_; }
  /// Version of the pinglist being probed (empty when none).
  std::string version() const;
  /// Unix seconds of the last pull that confirmed the pinglist (200 or 304); 0 = never.
  int64_t last_confirmed_unix_s() const { return last_confirmed_s_; }

 private:
  void run();
  void heartbeat();
  void pull();
  PullResult fetch(std::shared_ptr<model::Pinglist>* out);

  ControlOptions options_;
  AgentMetrics& metrics_;
  Apply apply_;
  PullTracker tracker_;
  std::string pinglist_url_;
  std::string etag_;
  std::string rejected_etag_;
  std::atomic<bool> probing_{false};
  std::atomic<uint32_t> failures_{0};
  std::atomic<int64_t> last_confirmed_s_{0};
  mutable std::mutex mu_;
  std::string version_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  http::Client* client_ = nullptr;  ///< owned by run()
};

}  // namespace pingmesh::agent
