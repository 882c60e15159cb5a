#include "analyze/significance.hpp"

#include <gtest/gtest.h>

namespace pingmesh::analyze {
namespace {

TEST(Significance, WilsonBoundsBracketTheRate) {
  EXPECT_EQ(wilson_lower(0, 0, 3), 0);
  EXPECT_EQ(wilson_upper(0, 0, 3), 1);
  for (uint64_t k : {0, 1, 5, 50, 100}) {
    double p = static_cast<double>(k) / 100;
    EXPECT_LE(wilson_lower(k, 100, 3.09), p);
    EXPECT_GE(wilson_upper(k, 100, 3.09), p);
  }
  EXPECT_NEAR(wilson_lower(500, 1000, 1.96), 0.469, 0.001);
}

TEST(Significance, OneLostProbeInTenIsNotALossAlarm) {
  Significance s;  // z 3.09, >= 100 samples, >= 3 events
  EXPECT_FALSE(significantly_above(1, 10, 0.001, s));
  EXPECT_FALSE(significantly_above(2, 1000, 0.001, s));  // 0.2 % but only two events
  EXPECT_FALSE(significantly_above(3, 3000, 0.001, s));  // exactly 0.1 %
  EXPECT_TRUE(significantly_above(10, 1000, 0.001, s));  // 1 % over 1000 probes
  EXPECT_TRUE(significantly_above(8, 400, 0.001, s));    // 2 % over 400
}

TEST(Significance, NormalLossNeverReachesTheThreshold) {
  // 1e-5 loss: even 10^6 probes carry ~10 losses, far below 0.1 %.
  Significance s;
  EXPECT_FALSE(significantly_above(10, 1'000'000, 0.001, s));
  EXPECT_FALSE(significantly_above(30, 1'000'000, 0.001, s));
}

TEST(Significance, MinSignificantCountIsTheFirstPassingCount) {
  Significance s;
  uint64_t need = min_significant_count(120, 0.01, s);
  ASSERT_LE(need, 120u);
  EXPECT_TRUE(significantly_above(need, 120, 0.01, s));
  EXPECT_FALSE(significantly_above(need - 1, 120, 0.01, s));
  EXPECT_EQ(min_significant_count(50, 0.01, s), 51u);  // below min_samples
  // Large n: close to n * p plus a few standard deviations.
  uint64_t big = min_significant_count(10000, 0.01, s);
  EXPECT_GT(big, 100u);
  EXPECT_LT(big, 150u);
}

}  // namespace
}  // namespace pingmesh::analyze
