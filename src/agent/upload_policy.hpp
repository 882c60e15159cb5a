#pragma once
/// When an upload is acked, retried or given up, and how long to wait before a retry.
/// Pure functions; the uploader supplies the random numbers and the clock.

#include <cstdint>
#include <optional>
#include <string_view>

namespace pingmesh::agent {

/// What to do with a batch after one POST attempt.
enum class UploadAction { kAcked, kRetry, kReject };

/// 2xx = acked; transport error (status 0), 408, 429 and 5xx = retry; any other status = the
/// collector will never take this batch: drop it and count it.
UploadAction classify_upload(int status);

/// Exponential backoff with jitter.
struct BackoffPolicy {
  int64_t initial_ms = 500;
  int64_t max_ms = 30000;
  double multiplier = 2.0;
  double jitter = 0.5;        ///< the delay is drawn from [d * (1 - jitter), d]
  uint32_t max_attempts = 5;  ///< attempts per batch before it is dropped (>= 1)
};

/// Delay before retry number `attempt` (1 = after the first failure). `random01` in [0, 1)
/// draws the jitter. A Retry-After given by the server is honoured (raised to at least the
/// computed delay's lower bound, capped at max_ms).
int64_t backoff_delay_ms(const BackoffPolicy& policy, uint32_t attempt, double random01,
                         std::optional<int64_t> retry_after_ms);

/// Parses a Retry-After header: delta-seconds or an HTTP-date (then relative to now_unix_ms).
/// nullopt when absent or malformed.
std::optional<int64_t> parse_retry_after_ms(std::string_view value, int64_t now_unix_ms);

}  // namespace pingmesh::agent
