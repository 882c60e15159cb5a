#include "collector/aggregator.hpp"

#include <gtest/gtest.h>

#include <random>

namespace pingmesh::collector {
namespace {

constexpr int64_t kNowUs = 1'700'000'000'000'000;  // a minute boundary: 1700000000 % 60 == 20
constexpr int64_t kMinuteUs = 60'000'000;

/// A batch from `agent` in dc1/r1 with peers p0 (dc1/r1), p1 (dc1/r2), p2 (dc2/r9).
v1::ResultBatch make_batch(const std::string& agent = "s1") {
  v1::ResultBatch b;
  b.set_agent(agent);
  b.set_dc("dc1");
  b.set_rack("r1");
  b.set_batch_id(1);
  auto add_peer = [&](const char* name, const char* dc, const char* rack) {
    auto* p = b.add_peers();
    p->set_name(name);
    p->set_dc(dc);
    p->set_rack(rack);
  };
  add_peer("p0", "dc1", "r1");
  add_peer("p1", "dc1", "r2");
  add_peer("p2", "dc2", "r9");
  return b;
}

void add_result(v1::ResultBatch* b, uint32_t peer, v1::Outcome outcome, uint32_t rtt_us,
                int64_t ts_us = kNowUs - 1000, v1::Protocol protocol = v1::TCP) {
  auto* r = b->add_results();
  r->set_peer(peer);
  r->set_outcome(outcome);
  r->set_rtt_us(rtt_us);
  r->set_timestamp_us(ts_us);
  r->set_protocol(protocol);
}

const Stats* find(const Window& w, Level level, Key key) {
  uint32_t cell = w.at(level).find(key);
  return cell == Cells::kNone ? nullptr : &w.at(level).stats(cell);
}

TEST(LossRule, TcpCountsRetransmittedConnectsOverSuccessfulOnes) {
  Stats s;
  for (int i = 0; i < 97; ++i) s.add(Protocol::kTcp, Outcome::kOk, 250, Sketch::index_of(250));
  for (int i = 0; i < 3; ++i) s.add(Protocol::kTcp, Outcome::kDrop, 3'000'250, 0);
  for (int i = 0; i < 5; ++i) s.add(Protocol::kTcp, Outcome::kTimeout, 0, 0);
  for (int i = 0; i < 2; ++i) s.add(Protocol::kTcp, Outcome::kRefused, 0, 0);
  s.add(Protocol::kTcp, Outcome::kError, 0, 0);
  EXPECT_EQ(s.probes, 108u);
  EXPECT_EQ(s.successes(), 100u);
  EXPECT_EQ(s.failures(), 8u);
  EXPECT_DOUBLE_EQ(*s.loss(), 0.03);  // failed connects are not network loss
  EXPECT_EQ(s.rtt.count(), 97u);      // the drops' RTT is the SYN timer, not in the sketch
  EXPECT_NEAR(s.rtt.quantile(0.99), 250, 2.5);
}

TEST(LossRule, UdpAndIcmpCountUnansweredOverSent) {
  for (auto p : {Protocol::kUdp, Protocol::kIcmp}) {
    Stats s;
    for (int i = 0; i < 90; ++i) s.add(p, Outcome::kOk, 100, Sketch::index_of(100));
    for (int i = 0; i < 9; ++i) s.add(p, Outcome::kTimeout, 0, 0);
    s.add(p, Outcome::kRefused, 0, 0);
    EXPECT_DOUBLE_EQ(*s.loss(), 0.09);
  }
  Stats none;
  none.add(Protocol::kTcp, Outcome::kTimeout, 0, 0);
  EXPECT_FALSE(none.loss().has_value());  // no successful connect: loss is unknown, not 0
}

TEST(Aggregator, UpdatesEveryLevel) {
  Names names;
  Aggregator agg({}, &names);
  auto b = make_batch();
  add_result(&b, 0, v1::OK, 100);
  add_result(&b, 1, v1::OK, 300);
  add_result(&b, 1, v1::DROP, 3'000'000);
  add_result(&b, 2, v1::OK, 2000);
  add_result(&b, 2, v1::OK, 2000, kNowUs - 1000, v1::UDP);
  auto counts = agg.add(b, kNowUs);
  EXPECT_EQ(counts.accepted, 5u);
  ASSERT_EQ(agg.windows().size(), 1u);
  const Window& w = *agg.windows().begin()->second;
  EXPECT_EQ(w.start_s, (kNowUs / kMinuteUs) * 60);
  uint32_t dc1 = *names.find_dc("dc1"), dc2 = *names.find_dc("dc2");
  uint32_t r1 = *names.find_rack(dc1, "r1"), r2 = *names.find_rack(dc1, "r2");
  uint32_t r9 = *names.find_rack(dc2, "r9");
  uint32_t s1 = *names.find_server("s1"), p1 = *names.find_server("p1");
  uint8_t tcp = 2, udp = 3;

  auto* pair = find(w, Level::kPair, {s1, p1, tcp, 0});
  ASSERT_TRUE(pair);
  EXPECT_EQ(pair->probes, 2u);
  EXPECT_DOUBLE_EQ(*pair->loss(), 0.5);
  EXPECT_EQ(w.at(Level::kPair).scope(w.at(Level::kPair).find({s1, p1, tcp, 0})), r1);

  ASSERT_TRUE(find(w, Level::kRackPair, {r1, r2, tcp, 0}));
  EXPECT_EQ(find(w, Level::kRackPair, {r1, r9, tcp, 0})->probes, 1u);
  EXPECT_EQ(find(w, Level::kDcPair, {dc1, dc1, tcp, 0})->probes, 3u);
  EXPECT_EQ(find(w, Level::kDcPair, {dc1, dc2, tcp, 0})->probes, 1u);
  EXPECT_EQ(find(w, Level::kDcPair, {dc1, dc2, udp, 0})->probes, 1u);
  EXPECT_EQ(find(w, Level::kServerSrc, {s1, 0, tcp, 0})->probes, 4u);
  EXPECT_EQ(find(w, Level::kServerDst, {p1, 0, tcp, 0})->probes, 2u);
  // The rack SLA counts intra-DC probes only.
  EXPECT_EQ(find(w, Level::kRack, {r1, 0, tcp, 0})->probes, 3u);
  EXPECT_EQ(find(w, Level::kRack, {r1, 0, udp, 0}), nullptr);
}

TEST(Aggregator, ValidatesAndCountsRejects) {
  Names names;
  Aggregator agg({}, &names);
  auto b = make_batch();
  add_result(&b, 0, v1::OK, 100);                                      // ok
  add_result(&b, 7, v1::OK, 100);                                      // bad peer index
  add_result(&b, 0, v1::OK, 61'000'000);                               // absurd RTT
  add_result(&b, 0, v1::OK, 100, kNowUs + 10'000'000);                 // clamped to now
  add_result(&b, 0, v1::OK, 100, kNowUs + 400'000'000);                // too far ahead
  add_result(&b, 0, v1::OUTCOME_UNSPECIFIED, 100);                     // bad outcome
  add_result(&b, 0, v1::OK, 100, kNowUs, v1::PROTOCOL_UNSPECIFIED);    // bad protocol
  agg.close(kNowUs / 1'000'000);
  add_result(&b, 0, v1::OK, 100, kNowUs - 10 * kMinuteUs);             // window closed
  auto c = agg.add(b, kNowUs);
  EXPECT_EQ(c.accepted, 2u);
  EXPECT_EQ(c.clamped, 1u);
  EXPECT_EQ(c.rejected[static_cast<int>(Reject::kBadPeer)], 1u);
  EXPECT_EQ(c.rejected[static_cast<int>(Reject::kRttAbsurd)], 1u);
  EXPECT_EQ(c.rejected[static_cast<int>(Reject::kFuture)], 1u);
  EXPECT_EQ(c.rejected[static_cast<int>(Reject::kBadProtocol)], 2u);
  EXPECT_EQ(c.rejected[static_cast<int>(Reject::kTooOld)], 1u);
  EXPECT_EQ(c.rejected_total(), 6u);

  v1::ResultBatch anonymous = make_batch("");
  add_result(&anonymous, 0, v1::OK, 100);
  EXPECT_EQ(agg.add(anonymous, kNowUs).rejected[static_cast<int>(Reject::kBadSource)], 1u);
}

TEST(Aggregator, ReplayAppliesTheRecordedBound) {
  Names names;
  Aggregator agg({}, &names);
  auto b = make_batch();
  add_result(&b, 0, v1::OK, 100, kNowUs - 2 * kMinuteUs);
  add_result(&b, 0, v1::OK, 100, kNowUs);
  int64_t bound = (kNowUs / kMinuteUs) * 60;  // as if the older window had been closed at ingest
  int64_t used = 0;
  auto c = agg.add(b, kNowUs, bound, &used);
  EXPECT_EQ(used, bound);
  EXPECT_EQ(c.accepted, 1u);
  EXPECT_EQ(c.rejected[static_cast<int>(Reject::kTooOld)], 1u);
}

TEST(Aggregator, ClosesWindowsAfterGrace) {
  Names names;
  Aggregator agg({.window_s = 60, .grace_s = 120}, &names);
  for (int m = 4; m >= 0; --m) {  // one batch a minute, each received when probed
    auto b = make_batch();
    add_result(&b, 0, v1::OK, 100, kNowUs - m * kMinuteUs);
    EXPECT_EQ(agg.add(b, kNowUs - m * kMinuteUs).accepted, 1u);
  }
  EXPECT_EQ(agg.windows().size(), 5u);
  int64_t now_s = kNowUs / 1'000'000;
  int64_t current = now_s / 60 * 60;
  auto closed = agg.close(now_s);
  // Windows that ended more than 120 s ago: those starting at current-4m and current-3m.
  ASSERT_EQ(closed.size(), 2u);
  EXPECT_EQ(closed[0]->start_s, current - 240);
  EXPECT_EQ(closed[1]->start_s, current - 180);
  EXPECT_EQ(agg.open_from(), current - 120);
  EXPECT_EQ(agg.close(now_s).size(), 0u);
  EXPECT_EQ(agg.close(now_s + 600).size(), 3u);
}

TEST(Rollup, MergingMinuteWindowsEqualsOneLongWindow) {
  Names names_a, names_b;
  Aggregator minutes({.window_s = 60, .grace_s = 3600}, &names_a);
  Aggregator ten({.window_s = 600, .grace_s = 3600}, &names_b);
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> rtt(std::log(300.0), 0.7);
  std::uniform_int_distribution<int> outcome(1, 40);
  int64_t start_us = (kNowUs / (10 * kMinuteUs)) * 10 * kMinuteUs;
  auto b = make_batch();
  for (int i = 0; i < 20000; ++i) {
    int o = outcome(rng);
    add_result(&b, static_cast<uint32_t>(i % 3), o <= 5 ? static_cast<v1::Outcome>(o) : v1::OK,
               static_cast<uint32_t>(rtt(rng)), start_us + i * 30'000);  // spans 10 minutes
  }
  int64_t now_us = start_us + 10 * kMinuteUs;
  EXPECT_EQ(minutes.add(b, now_us).accepted, 20000u);
  EXPECT_EQ(ten.add(b, now_us).accepted, 20000u);
  auto mins = minutes.close_all();
  auto tens = ten.close_all();
  ASSERT_EQ(mins.size(), 10u);
  ASSERT_EQ(tens.size(), 1u);
  // Roll up through the tile encoding, as the store does.
  for (int l = 0; l < kLevels; ++l) {
    Cells rolled;
    for (const auto& w : mins) {
      const Cells& c = w->levels[l];
      std::vector<uint32_t> all(c.size());
      for (uint32_t i = 0; i < c.size(); ++i) all[i] = i;
      ASSERT_TRUE(decode_tile(encode_tile(c, all), [&](const Key& k, std::string_view* in) {
        return rolled.stats(rolled.find_or_add(k, 0)).merge_encoded(in);
      }));
    }
    const Cells& direct = tens[0]->levels[l];
    ASSERT_EQ(rolled.size(), direct.size()) << l;
    for (uint32_t i = 0; i < direct.size(); ++i) {
      const Stats& want = direct.stats(i);
      const Stats& got = rolled.stats(rolled.find(direct.key(i)));
      EXPECT_EQ(got.probes, want.probes);
      EXPECT_EQ(got.lost, want.lost);
      EXPECT_EQ(got.loss_base, want.loss_base);
      for (double q : {0.5, 0.9, 0.99, 0.999, 0.9999}) {
        EXPECT_DOUBLE_EQ(got.rtt.quantile(q), want.rtt.quantile(q));
      }
    }
  }
}

TEST(Tile, RejectsMalformedData) {
  Cells c;
  c.stats(c.find_or_add({1, 2, 2, 0}, 0)).add(Protocol::kTcp, Outcome::kOk, 10,
                                                Sketch::index_of(10));
  std::string tile = encode_tile(c, {0});
  auto skip = [](const Key&, std::string_view* in) { return skip_stats(in); };
  EXPECT_TRUE(decode_tile(tile, skip));
  EXPECT_FALSE(decode_tile(tile.substr(0, tile.size() - 1), skip));
  EXPECT_FALSE(decode_tile(tile + "x", skip));
}

}  // namespace
}  // namespace pingmesh::collector
