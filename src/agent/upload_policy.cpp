#include "agent/upload_policy.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace pingmesh::agent {

UploadAction classify_upload(int status) {
  if (status >= 200 && status < 300) return UploadAction::kAcked;
  if (status == 0 || status == 408 || status == 429 || status >= 500) return UploadAction::kRetry;
  return UploadAction::kReject;
}

int64_t backoff_delay_ms(const BackoffPolicy& policy, uint32_t attempt, double random01,
                         std::optional<int64_t> retry_after_ms) {
  double d = static_cast<double>(policy.initial_ms) *
             std::pow(policy.multiplier, static_cast<double>(attempt > 0 ? attempt - 1 : 0));
  d = std::min(d, static_cast<double>(policy.max_ms));
  double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  double r = std::clamp(random01, 0.0, 1.0);
  auto delay = static_cast<int64_t>(d * (1.0 - jitter * r));
  if (retry_after_ms) delay = std::max(delay, std::min(*retry_after_ms, policy.max_ms));
  return std::max<int64_t>(delay, 0);
}

std::optional<int64_t> parse_retry_after_ms(std::string_view value, int64_t now_unix_ms) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && p == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return seconds * 1000;
  }
  std::tm tm{};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  int64_t at_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return std::max<int64_t>(at_ms - now_unix_ms, 0);
}

}  // namespace pingmesh::agent
