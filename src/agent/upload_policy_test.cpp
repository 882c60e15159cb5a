#include "agent/upload_policy.hpp"

#include <gtest/gtest.h>

namespace pingmesh::agent {
namespace {

TEST(UploadPolicy, Classification) {
  EXPECT_EQ(classify_upload(200), UploadAction::kAcked);
  EXPECT_EQ(classify_upload(204), UploadAction::kAcked);
  EXPECT_EQ(classify_upload(0), UploadAction::kRetry);
  EXPECT_EQ(classify_upload(429), UploadAction::kRetry);
  EXPECT_EQ(classify_upload(503), UploadAction::kRetry);
  EXPECT_EQ(classify_upload(408), UploadAction::kRetry);
  EXPECT_EQ(classify_upload(400), UploadAction::kReject);
  EXPECT_EQ(classify_upload(401), UploadAction::kReject);
  EXPECT_EQ(classify_upload(413), UploadAction::kReject);
}

TEST(UploadPolicy, ExponentialBackoffWithJitterAndCap) {
  BackoffPolicy p;
  p.initial_ms = 100;
  p.max_ms = 1000;
  p.jitter = 0.5;
  EXPECT_EQ(backoff_delay_ms(p, 1, 0.0, std::nullopt), 100);
  EXPECT_EQ(backoff_delay_ms(p, 2, 0.0, std::nullopt), 200);
  EXPECT_EQ(backoff_delay_ms(p, 3, 0.0, std::nullopt), 400);
  EXPECT_EQ(backoff_delay_ms(p, 10, 0.0, std::nullopt), 1000);
  EXPECT_EQ(backoff_delay_ms(p, 2, 1.0, std::nullopt), 100) << "full jitter halves";
  int64_t d = backoff_delay_ms(p, 3, 0.37, std::nullopt);
  EXPECT_GE(d, 200);
  EXPECT_LE(d, 400);
}

TEST(UploadPolicy, RetryAfterHonouredButCapped) {
  BackoffPolicy p;
  p.initial_ms = 100;
  p.max_ms = 5000;
  EXPECT_EQ(backoff_delay_ms(p, 1, 0.0, 3000), 3000);
  EXPECT_EQ(backoff_delay_ms(p, 1, 0.0, 60000), 5000);
  EXPECT_EQ(backoff_delay_ms(p, 1, 0.0, 10), 100);
}

TEST(UploadPolicy, ParseRetryAfter) {
  EXPECT_EQ(parse_retry_after_ms("7", 0), 7000);
  EXPECT_EQ(parse_retry_after_ms(" 0 ", 0), 0);
  EXPECT_FALSE(parse_retry_after_ms("", 0));
  EXPECT_FALSE(parse_retry_after_ms("soon", 0));
  // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 s
  EXPECT_EQ(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000), 10000);
  EXPECT_EQ(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490000), 0);
}

}  // namespace
}  // namespace pingmesh::agent
