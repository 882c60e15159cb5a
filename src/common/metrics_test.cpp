#include "common/metrics.hpp"

#include <gtest/gtest.h>

using namespace pingmesh::metrics;

TEST(Registry, RendersCountersGaugesAndHistograms) {
  Registry r;
  r.counter("pingmesh_test_total", "A test counter.", {{"kind", "a\"b"}}).inc(3);
  r.gauge("pingmesh_test_gauge", "A gauge.").set(1.5);
  auto& h = r.histogram("pingmesh_test_seconds", "A histogram.", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  auto text = r.render();
  EXPECT_NE(text.find("# TYPE pingmesh_test_total counter"), std::string::npos);
  EXPECT_NE(text.find("pingmesh_test_total{kind=\"a\\\"b\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("pingmesh_test_gauge 1.5\n"), std::string::npos);
  EXPECT_NE(text.find("pingmesh_test_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pingmesh_test_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("pingmesh_test_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("pingmesh_test_seconds_count 3\n"), std::string::npos);
  // The same name and labels return the same series.
  r.counter("pingmesh_test_total", "A test counter.", {{"kind", "a\"b"}}).inc();
  EXPECT_NE(r.render().find("} 4\n"), std::string::npos);
}
