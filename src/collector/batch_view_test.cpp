#include "collector/batch_view.hpp"

#include <gtest/gtest.h>

#include <random>

#include "collector/aggregator.hpp"

namespace pingmesh::collector {
namespace {

v1::ResultBatch sample_batch(uint64_t seed) {
  std::mt19937_64 rng(seed);
  v1::ResultBatch b;
  b.set_agent("agent-é");  // non-ASCII UTF-8
  b.set_dc("dc1");
  b.set_rack("r1");
  b.set_address("10.0.0.1");
  b.set_batch_id(rng());
  b.set_dropped_before(3);
  for (int p = 0; p < 5; ++p) {
    auto* peer = b.add_peers();
    peer->set_name("p" + std::to_string(p));
    peer->set_address("10.0.0." + std::to_string(p + 2));
    peer->set_dc(p < 3 ? "dc1" : "dc2");
    peer->set_rack("r" + std::to_string(p % 2));
  }
  for (int i = 0; i < 50; ++i) {
    auto* r = b.add_results();
    r->set_peer(static_cast<uint32_t>(rng() % 6));  // 5 is out of range on purpose
    r->set_timestamp_us(static_cast<int64_t>(rng() % 2'000'000'000'000'000ULL) - 1000);
    r->set_protocol(static_cast<v1::Protocol>(rng() % 6));
    r->set_port(9000);
    r->set_dscp(static_cast<uint32_t>(rng() % 70));
    r->set_outcome(static_cast<v1::Outcome>(rng() % 7));
    r->set_rtt_us(static_cast<uint32_t>(rng()));
    r->set_retransmits(1);
    r->set_reordered(true);
  }
  return b;
}

void expect_equal(const BatchView& a, const BatchView& b) {
  EXPECT_EQ(a.agent, b.agent);
  EXPECT_EQ(a.dc, b.dc);
  EXPECT_EQ(a.rack, b.rack);
  EXPECT_EQ(a.batch_id, b.batch_id);
  ASSERT_EQ(a.peers.size(), b.peers.size());
  for (std::size_t i = 0; i < a.peers.size(); ++i) {
    EXPECT_EQ(a.peers[i].name, b.peers[i].name);
    EXPECT_EQ(a.peers[i].dc, b.peers[i].dc);
    EXPECT_EQ(a.peers[i].rack, b.peers[i].rack);
  }
  ASSERT_EQ(a.results.size(), b.results.size());
  for (std::size_t i = 0; i < a.results.size(); ++i) {
    const auto &x = a.results[i], &y = b.results[i];
    EXPECT_EQ(x.peer, y.peer);
    EXPECT_EQ(x.timestamp_us, y.timestamp_us);
    EXPECT_EQ(x.protocol, y.protocol);
    EXPECT_EQ(x.outcome, y.outcome);
    EXPECT_EQ(x.dscp, y.dscp);
    EXPECT_EQ(x.rtt_us, y.rtt_us);
  }
}

TEST(BatchView, WireParserMatchesProtobuf) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    v1::ResultBatch b = sample_batch(seed);
    std::string wire = b.SerializeAsString();
    BatchView parsed, converted;
    ASSERT_TRUE(parse_batch(wire, &parsed));
    from_proto(b, &converted);
    expect_equal(parsed, converted);
    // Concatenated messages merge: the later batch_id wins, repeated fields append.
    v1::ResultBatch extra;
    extra.set_batch_id(77);
    std::string twice = wire + extra.SerializeAsString();
    v1::ResultBatch merged;
    ASSERT_TRUE(merged.ParseFromString(twice));
    ASSERT_TRUE(parse_batch(twice, &parsed));
    from_proto(merged, &converted);
    expect_equal(parsed, converted);
    EXPECT_EQ(parsed.batch_id, 77u);
  }
}

TEST(BatchView, RejectsWhatProtobufRejects) {
  std::string wire = sample_batch(9).SerializeAsString();
  BatchView view;
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    std::string part = wire.substr(0, cut);
    v1::ResultBatch b;
    EXPECT_EQ(parse_batch(part, &view), b.ParseFromString(part)) << cut;
  }
  // Invalid UTF-8 in a string field (protobuf refuses proto3 strings that are not UTF-8).
  v1::ResultBatch bad = sample_batch(3);
  bad.mutable_peers(2)->set_rack(std::string("r\xff", 2));
  std::string bad_wire;
  bad.SerializePartialToString(&bad_wire);  // serialising only logs the bad string
  v1::ResultBatch check;
  EXPECT_FALSE(check.ParseFromString(bad_wire));
  EXPECT_FALSE(parse_batch(bad_wire, &view));
  EXPECT_FALSE(parse_batch(std::string("\x3a\x05\x0a\x03", 4), &view));  // truncated peer
  EXPECT_FALSE(parse_batch(std::string("\x00\x01", 2), &view));          // field number 0
}

TEST(BatchView, MutatedBodiesDecodeAsProtobufDoes) {
  // Random byte flips, insertions and deletions: the wire parser accepts exactly the bodies
  // protobuf accepts, and then reads the same values.
  std::string wire = sample_batch(4).SerializeAsString();
  BatchView parsed, converted;
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::mt19937_64 rng(static_cast<uint64_t>(round));
    std::string m = wire;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      std::size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[at] = static_cast<char>(rng());
          break;
        case 1:
          m.insert(at, 1, static_cast<char>(rng()));
          break;
        default:
          m.erase(at, 1);
          break;
      }
    }
    v1::ResultBatch b;
    bool ok = b.ParseFromString(m);
    ASSERT_EQ(parse_batch(m, &parsed), ok) << round;
    if (!ok) continue;
    ++accepted;
    from_proto(b, &converted);
    expect_equal(parsed, converted);
  }
  EXPECT_GT(accepted, 100);  // the comparison covered accepted bodies too
}

TEST(BatchView, Utf8Validation) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii text, long enough for the fast path"));
  EXPECT_TRUE(valid_utf8("r\xc3\xa9seau \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("abcdefgh\x80"));
}

TEST(AgentCache, ChangedPeersTableIsResolvedAgain) {
  constexpr int64_t kNowUs = 1'700'000'000'000'000;
  Names names;
  Aggregator agg({}, &names);
  auto batch = [](const std::string& peer_name, const std::string& peer_rack) {
    v1::ResultBatch b;
    b.set_agent("s1");
    b.set_dc("dc1");
    b.set_rack("r1");
    auto* p = b.add_peers();
    p->set_name(peer_name);
    p->set_dc("dc1");
    p->set_rack(peer_rack);
    auto* r = b.add_results();
    r->set_peer(0);
    r->set_timestamp_us(kNowUs - 1000);
    r->set_protocol(v1::TCP);
    r->set_outcome(v1::OK);
    r->set_rtt_us(100);
    return b;
  };
  EXPECT_EQ(agg.add(batch("a", "r1"), kNowUs).accepted, 1u);
  EXPECT_EQ(agg.add(batch("a", "r1"), kNowUs).accepted, 1u);  // cached table
  EXPECT_EQ(agg.add(batch("b", "r1"), kNowUs).accepted, 1u);  // another peer at index 0
  EXPECT_EQ(agg.add(batch("c", "r2"), kNowUs).accepted, 1u);  // a peer in another rack
  const Window& w = *agg.windows().begin()->second;
  uint32_t s1 = *names.find_server("s1"), a = *names.find_server("a"), b = *names.find_server("b");
  auto probes = [&](Level l, Key k) {
    uint32_t c = w.at(l).find(k);
    return c == Cells::kNone ? 0u : static_cast<unsigned>(w.at(l).stats(c).probes);
  };
  EXPECT_EQ(probes(Level::kPair, {s1, a, 2, 0}), 2u);
  EXPECT_EQ(probes(Level::kPair, {s1, b, 2, 0}), 1u);
  uint32_t r1 = *names.find_rack(*names.find_dc("dc1"), "r1");
  uint32_t r2 = *names.find_rack(*names.find_dc("dc1"), "r2");
  EXPECT_EQ(probes(Level::kPair, {s1, *names.find_server("c"), 2, 0}), 1u);
  EXPECT_EQ(probes(Level::kRackPair, {r1, r1, 2, 0}), 3u);
  EXPECT_EQ(probes(Level::kRackPair, {r1, r2, 2, 0}), 1u);
  EXPECT_EQ(agg.cached_peers(), 1u);
}

}  // namespace
}  // namespace pingmesh::collector
