#include "agent/uploader.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <random>

#include "common/http.hpp"

namespace pingmesh::agent {

namespace {

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Uploader::Uploader(UploaderOptions options, std::function<AgentIdentity()> identity,
                   ResultBuffer& buffer, AgentMetrics& metrics)
    : options_(std::move(options)),
      identity_(std::move(identity)),
      buffer_(buffer),
      metrics_(metrics),
      start_unix_ms_(unix_ms()) {
  if (options_.batch_size == 0) options_.batch_size = 1;
  if (options_.backoff.max_attempts == 0) options_.backoff.max_attempts = 1;
}

Uploader::~Uploader() { stop(); }

void Uploader::start() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Uploader::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  buffer_.wake();
  thread_.join();
}

bool Uploader::sleep_ms(int64_t ms) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_.load(); });
}

void Uploader::run() {
  http::Client client;  // one per thread (libcurl handles are not shared)
  client_ = &client;
  while (!stopping_) {
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.batch_interval_ms);
    buffer_.wait_for(options_.batch_size, deadline);
    if (stopping_) break;
    // Send full batches back to back; a partial one only when its time is up.
    do {
      auto results = buffer_.take(options_.batch_size);
      if (results.empty()) break;
      upload(std::move(results), false);
    } while (!stopping_ && buffer_.size() >= options_.batch_size);
  }
  for (;;) {
    auto results = buffer_.take(options_.batch_size);
    if (results.empty()) break;
    upload(std::move(results), true);
  }
}

void Uploader::upload(std::vector<ProbeResult> results, bool final_attempt) {
  uint64_t dropped_before = buffer_.take_dropped_since_last();
  uint64_t batch_id = make_batch_id(start_unix_ms_, next_seq_++);
  std::size_t n = results.size();
  http::ClientRequest req;
  req.method = "POST";
  req.url = options_.url;
  req.timeout = std::chrono::milliseconds(options_.request_timeout_ms);
  req.headers = {{"content-type", "application/x-protobuf"}, {"content-encoding", "snappy"}};
  if (!options_.token.empty())
    req.headers.emplace_back("authorization", "Bearer " + options_.token);
  req.body = encode_batch(build_batch(identity_(), batch_id, results, dropped_before));
  results.clear();
  results.shrink_to_fit();
  uint32_t max_attempts = final_attempt ? 1 : options_.backoff.max_attempts;
  for (uint32_t attempt = 1;; ++attempt) {
    http::ClientResponse resp = client_->perform(req);
    UploadAction action = classify_upload(resp.status);
    if (action == UploadAction::kAcked) {
      metrics_.batches_uploaded.inc();
      metrics_.results_uploaded.inc(static_cast<double>(n));
      return;
    }
    if (action == UploadAction::kReject) {
      spdlog::warn("agent: collector rejected batch {} ({} results) with HTTP {}: {}", batch_id, n,
                   resp.status, resp.body.substr(0, 200));
      metrics_.dropped_rejected.inc(static_cast<double>(n));
      buffer_.add_dropped(n + dropped_before);
      return;
    }
    metrics_.upload_attempts_failed.inc();
    if (attempt >= max_attempts || stopping_) {
      spdlog::warn("agent: giving up batch {} ({} results) after {} attempts: {}", batch_id, n,
                   attempt, resp.status == 0 ? resp.error : "HTTP " + std::to_string(resp.status));
      metrics_.dropped_retries.inc(static_cast<double>(n));
      buffer_.add_dropped(n + dropped_before);
      return;
    }
    auto retry_after = parse_retry_after_ms(resp.header("retry-after"), unix_ms());
    double r = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    int64_t delay = backoff_delay_ms(options_.backoff, attempt, r, retry_after);
    spdlog::debug("agent: upload of batch {} failed ({}), retry in {} ms", batch_id,
                  resp.status == 0 ? resp.error : std::to_string(resp.status), delay);
    if (!sleep_ms(delay)) {
      max_attempts = attempt + 1;  // stopping: one more try, then count the batch as dropped
    }
  }
}

}  // namespace pingmesh::agent
