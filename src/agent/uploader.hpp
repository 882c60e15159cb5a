#pragma once
/// Uploads buffered results to the collector: batches by size or time, snappy-compressed
/// protobuf POSTed to {collector}/api/v1/results with a bearer token. A batch keeps its id across
/// retries (the collector deduplicates on it); 2xx acks it; 408/429/5xx/transport errors retry
/// with exponential backoff and jitter (Retry-After honoured) up to BackoffPolicy::max_attempts,
/// then the batch is dropped and counted; other 4xx drop it at once (counted). Dropped counts
/// ride on the next batch as dropped_before. One thread.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "agent/batch.hpp"
#include "agent/metrics.hpp"
#include "agent/result_buffer.hpp"
#include "agent/upload_policy.hpp"
#include "common/http.hpp"

namespace pingmesh::agent {

struct UploaderOptions {
  std::string url;    ///< full URL of the results endpoint
  std::string token;  ///< bearer token; empty = none
  std::size_t batch_size = 5000;
  uint32_t batch_interval_ms = 5000;
  uint32_t request_timeout_ms = 10000;
  BackoffPolicy backoff;
};

class Uploader {
 public:
  /// `identity` is called per batch (the agent learns its DC and rack from its pinglist).
  Uploader(UploaderOptions options, std::function<AgentIdentity()> identity, ResultBuffer& buffer,
           AgentMetrics& metrics);
  ~Uploader();
  void start();
  /// Stops the thread after one last attempt (no retries) to upload what is buffered; what
  /// cannot be uploaded is counted as dropped. Idempotent.
  void stop();

 private:
  void run();
  /// Uploads one batch with retries (one attempt when `final_attempt`); counts it when dropped.
  void upload(std::vector<ProbeResult> results, bool final_attempt);
  /// Sleeps unless stopping; false when woken by stop().
  bool sleep_ms(int64_t ms);

  UploaderOptions options_;
  std::function<AgentIdentity()> identity_;
  ResultBuffer& buffer_;
  AgentMetrics& metrics_;
  int64_t start_unix_ms_;
  uint64_t next_seq_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  http::Client* client_ = nullptr;  ///< owned by run()
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace pingmesh::agent
