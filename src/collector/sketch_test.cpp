#include "collector/sketch.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "collector/varint.hpp"

namespace pingmesh::collector {
namespace {

constexpr double kQuantiles[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1};

/// Exact quantile with the sketch's rank convention: the element at floor(q * (n - 1)).
double exact(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(std::floor(q * static_cast<double>(v.size() - 1)))];
}

void expect_accurate(const Sketch& s, const std::vector<double>& values, const char* what) {
  ASSERT_EQ(s.count(), values.size()) << what;
  for (double q : kQuantiles) {
    double want = exact(values, q);
    double got = s.quantile(q);
    EXPECT_LE(std::abs(got - want), Sketch::kRelativeAccuracy * want + 1e-9)
        << what << " q=" << q << " want=" << want << " got=" << got;
  }
  auto [mn, mx] = std::minmax_element(values.begin(), values.end());
  EXPECT_DOUBLE_EQ(s.min(), *mn) << what;
  EXPECT_DOUBLE_EQ(s.max(), *mx) << what;
}

Sketch sketch_of(const std::vector<double>& values) {
  Sketch s;
  for (double v : values) s.add(v);
  return s;
}

TEST(Sketch, AccurateOnRandomDistributions) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(50, 5000);
  std::lognormal_distribution<double> lognormal(std::log(250.0), 0.6);
  std::normal_distribution<double> low(250, 30), high(4000, 400);
  std::bernoulli_distribution pick_high(0.05);
  for (int n : {1, 5, 8, 9, 100, 10000, 200000}) {
    std::vector<double> u, l, b;
    for (int i = 0; i < n; ++i) {
      u.push_back(uniform(rng));
      l.push_back(lognormal(rng));
      b.push_back(std::max(1.0, pick_high(rng) ? high(rng) : low(rng)));
    }
    expect_accurate(sketch_of(u), u, "uniform");
    expect_accurate(sketch_of(l), l, "lognormal");
    expect_accurate(sketch_of(b), b, "bimodal");
  }
}

TEST(Sketch, AccurateOnAdversarialData) {
  std::vector<double> equal(1000, 237);
  expect_accurate(sketch_of(equal), equal, "all equal");
  EXPECT_DOUBLE_EQ(sketch_of(equal).quantile(0.99), 237);  // clamped to min == max

  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(0, std::log(60e6));
  std::vector<double> wide;
  for (int i = 0; i < 50000; ++i) wide.push_back(std::round(std::exp(exponent(rng))));
  wide.push_back(1);
  wide.push_back(60e6);
  expect_accurate(sketch_of(wide), wide, "1 us .. 60 s");

  std::vector<double> few = {60e6, 1, 300};
  expect_accurate(sketch_of(few), few, "three samples");

  std::vector<double> integers;  // integer microseconds near bucket edges
  for (int v = 1; v < 3000; ++v) integers.push_back(v);
  expect_accurate(sketch_of(integers), integers, "every integer");
}

TEST(Sketch, ZeroAndEmpty) {
  Sketch s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.quantile(0.5), 0);
  s.add(0);
  s.add(0);
  s.add(100);
  EXPECT_EQ(s.quantile(0.5), 0);
  EXPECT_NEAR(s.quantile(1), 100, 1);
  EXPECT_EQ(s.count(), 3u);
  EXPECT_NEAR(s.mean(), 100.0 / 3, 1e-9);
}

TEST(Sketch, MergingEqualsSketchOfUnion) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> lognormal(std::log(400.0), 1.0);
  std::vector<double> all;
  Sketch merged;
  for (int part = 0; part < 50; ++part) {
    Sketch s;
    int n = part % 7 == 0 ? 3 : 1000;  // mixes inline and dense sketches
    for (int i = 0; i < n; ++i) {
      double v = lognormal(rng);
      all.push_back(v);
      s.add(v);
    }
    merged.merge(s);
  }
  expect_accurate(merged, all, "merged");
  Sketch direct = sketch_of(all);
  for (double q : kQuantiles) EXPECT_DOUBLE_EQ(merged.quantile(q), direct.quantile(q));
  EXPECT_NEAR(merged.sum(), direct.sum(), 1e-6 * direct.sum());
}

TEST(Sketch, SerializationRoundTripsAndMerges) {
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> lognormal(std::log(300.0), 0.8);
  for (int n : {0, 1, 8, 9, 5000}) {
    Sketch s;
    for (int i = 0; i < n; ++i) s.add(lognormal(rng));
    std::string enc;
    s.serialize(&enc);
    enc += "tail";
    std::string_view in = enc;
    Sketch back;
    ASSERT_TRUE(back.merge_encoded(&in));
    EXPECT_EQ(in, "tail");
    EXPECT_TRUE(back == s) << n;
    std::string_view skip = enc;
    ASSERT_TRUE(Sketch::skip_encoded(&skip));
    EXPECT_EQ(skip, "tail");
    // Merging an encoded sketch twice doubles every count.
    in = enc;
    ASSERT_TRUE(back.merge_encoded(&in));
    EXPECT_EQ(back.count(), 2u * s.count());
    EXPECT_DOUBLE_EQ(back.quantile(0.5), s.quantile(0.5));
  }
  EXPECT_LE(
      [] {
        Sketch s;
        for (int i = 0; i < 6; ++i) s.add(200 + i);
        std::string enc;
        s.serialize(&enc);
        return enc.size();
      }(),
      40u);
}

TEST(Sketch, ReadsVersion1VarintBuckets) {
  // Schema version 1 wrote dense buckets as varints: layout (n << 1 | 1), first index, counts.
  std::string enc;
  varint::put(&enc, 4);  // count
  varint::put(&enc, 0);  // zero bucket
  varint::put_double(&enc, 100);
  varint::put_double(&enc, 104);
  varint::put_double(&enc, 406);
  varint::put(&enc, 3 << 1 | 1);
  int first = Sketch::index_of(100);
  varint::put(&enc, varint::zigzag(first));
  for (int c : {2, 0, 2}) varint::put(&enc, static_cast<uint64_t>(c));
  std::string_view in = enc, skip = enc;
  Sketch back;
  ASSERT_TRUE(back.merge_encoded(&in));
  EXPECT_TRUE(in.empty());
  ASSERT_TRUE(Sketch::skip_encoded(&skip));
  EXPECT_TRUE(skip.empty());
  EXPECT_EQ(back.count(), 4u);
  EXPECT_DOUBLE_EQ(back.min(), 100);
  EXPECT_DOUBLE_EQ(back.max(), 104);
  EXPECT_DOUBLE_EQ(back.quantile(0.5), std::clamp(Sketch::value_of(first), 100.0, 104.0));
  EXPECT_DOUBLE_EQ(back.quantile(0.9), std::clamp(Sketch::value_of(first + 2), 100.0, 104.0));
}

TEST(Sketch, WideCountsRoundTrip) {
  // Counts past 255 / 65535 use 2- and 4-byte buckets.
  for (uint64_t n : {300u, 70000u}) {
    Sketch s;
    for (double v : {100.0, 101.0, 150.0, 151.0, 200.0}) s.add(v, n);
    s.add(120);
    std::string enc;
    s.serialize(&enc);
    std::string_view in = enc;
    Sketch back;
    ASSERT_TRUE(back.merge_encoded(&in));
    EXPECT_TRUE(in.empty());
    EXPECT_TRUE(back == s) << n;
    EXPECT_EQ(back.count(), 5 * n + 1);
  }
}

TEST(Sketch, IndexTableMatchesLog) {
  for (uint32_t v = 1; v < Sketch::kTableUs + 100; ++v) {
    ASSERT_EQ(Sketch::index_of_us(v), Sketch::index_of(v)) << v;
  }
}

TEST(Sketch, RejectsTruncatedEncoding) {
  Sketch s;
  for (int i = 1; i < 1000; ++i) s.add(i);
  std::string enc;
  s.serialize(&enc);
  for (std::size_t cut = 0; cut < enc.size(); cut += 7) {
    std::string_view in(enc.data(), cut);
    Sketch back;
    EXPECT_FALSE(back.merge_encoded(&in)) << cut;
    std::string_view skip(enc.data(), cut);
    EXPECT_FALSE(Sketch::skip_encoded(&skip)) << cut;
  }
}

}  // namespace
}  // namespace pingmesh::collector
