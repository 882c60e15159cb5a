#include "collector/query.hpp"

#include <gtest/gtest.h>

namespace pingmesh::collector {
namespace {

constexpr int64_t kDay = 1'700'006'400;  // a multiple of 86400

TEST(Cover, UsesCoarseCompleteTilesAndFinerEdges) {
  Coverage c;
  c.complete_until = {kDay, kDay + 3600, kDay + 4200, kDay + 4500};  // 1d, 1h, 10m, 1m
  // 00:53 .. 01:17 (the last hour up to a live edge).
  auto pieces = cover(kDay + 53 * 60, kDay + 77 * 60, c);
  std::vector<Piece> want;
  for (int m = 53; m < 60; ++m) want.push_back({60, kDay + m * 60});  // to the 10-min boundary
  want.push_back({600, kDay + 3600});                                // 01:00-01:10
  for (int m = 70; m < 75; ++m) want.push_back({60, kDay + m * 60});  // stored minutes
  for (int m = 75; m < 77; ++m) want.push_back({0, kDay + m * 60});   // live windows
  EXPECT_EQ(pieces, want);
  // 00:00 .. 01:00 is one hour tile; a cap at 10 minutes gives six.
  EXPECT_EQ(cover(kDay, kDay + 3600, c), (std::vector<Piece>{{3600, kDay}}));
  EXPECT_EQ(cover(kDay, kDay + 3600, c, 600).size(), 6u);
  EXPECT_TRUE(cover(kDay, kDay, c).empty());
}

TEST(Metric, ValuesUnitsAndMissing) {
  Stats s;
  EXPECT_TRUE(metric_value(s, Metric::kP99).missing);
  EXPECT_TRUE(metric_value(s, Metric::kLoss).missing);
  for (int i = 1; i <= 100; ++i) s.add(Protocol::kTcp, Outcome::kOk, i * 10, Sketch::index_of(i * 10));
  s.add(Protocol::kTcp, Outcome::kDrop, 3'000'000, 0);
  EXPECT_NEAR(metric_value(s, Metric::kP50).value, 500, 5);
  EXPECT_EQ(metric_value(s, Metric::kMax).value, 1000);
  EXPECT_EQ(metric_value(s, Metric::kProbes).value, 101);
  MetricValue loss = metric_value(s, Metric::kLoss);
  EXPECT_DOUBLE_EQ(loss.value, 1.0 / 101);
  EXPECT_EQ(loss.samples, 101u);
  EXPECT_EQ(unit_of(Metric::kLoss), "ratio");
  EXPECT_EQ(unit_of(*parse_metric("p9999")), "us");
  EXPECT_FALSE(parse_metric("p42"));
}

}  // namespace
}  // namespace pingmesh::collector
