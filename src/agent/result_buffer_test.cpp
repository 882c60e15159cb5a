#include "agent/result_buffer.hpp"

#include <gtest/gtest.h>

#include "agent/batch.hpp"

namespace pingmesh::agent {
namespace {

std::vector<ProbeResult> make(int n, int first_seq) {
  std::vector<ProbeResult> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)].seq = static_cast<uint32_t>(first_seq + i);
  return v;
}

TEST(ResultBuffer, DropsOldestWhenFullAndCountsThem) {
  ResultBuffer b(10);
  auto v = make(7, 0);
  EXPECT_EQ(b.push(&v), 0u);
  v = make(7, 7);
  EXPECT_EQ(b.push(&v), 4u);
  EXPECT_EQ(b.size(), 10u);
  EXPECT_EQ(b.overflow_dropped(), 4u);
  auto out = b.take(100);
  ASSERT_EQ(out.size(), 10u);
  EXPECT_EQ(out.front().seq, 4u) << "the oldest were dropped";
  EXPECT_EQ(out.back().seq, 13u);
}

TEST(ResultBuffer, EveryResultIsTakenOrCountedAsDropped) {
  ResultBuffer b(100);
  uint64_t produced = 0, taken = 0, dropped = 0;
  for (int round = 0; round < 50; ++round) {
    auto v = make(37, static_cast<int>(produced));
    produced += v.size();
    b.push(&v);
    if (round % 3 == 0) taken += b.take(20).size();
    dropped += b.take_dropped_since_last();
  }
  taken += b.take(1000).size();
  dropped += b.take_dropped_since_last();
  EXPECT_EQ(produced, taken + dropped);
}

TEST(ResultBuffer, DroppedSinceLastCarriesFailedUploads) {
  ResultBuffer b(2);
  auto v = make(5, 0);
  b.push(&v);
  b.add_dropped(10);
  EXPECT_EQ(b.take_dropped_since_last(), 13u);
  EXPECT_EQ(b.take_dropped_since_last(), 0u);
}

TEST(ResultBuffer, WaitForReturnsWhenEnoughResults) {
  ResultBuffer b(100);
  auto v = make(10, 0);
  b.push(&v);
  auto start = std::chrono::steady_clock::now();
  b.wait_for(5, start + std::chrono::seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(Batch, PeersListedOnceAndIndexed) {
  auto a = std::make_shared<PeerLabels>(PeerLabels{"a", "10.0.0.1", "dc1", "r1"});
  auto c = std::make_shared<PeerLabels>(PeerLabels{"c", "10.0.0.3", "dc1", "r2"});
  std::vector<ProbeResult> rs(3);
  rs[0].peer = a;
  rs[1].peer = c;
  rs[2].peer = a;
  rs[2].outcome = Outcome::kDrop;
  rs[2].retransmits = 1;
  auto batch = build_batch({"me", "dc1", "r1", "10.0.0.9"}, make_batch_id(1700000000000, 7), rs, 5);
  ASSERT_EQ(batch.peers_size(), 2);
  EXPECT_EQ(batch.results(2).peer(), 0u);
  EXPECT_EQ(batch.results(1).peer(), 1u);
  EXPECT_EQ(batch.results(2).outcome(), v1::DROP);
  EXPECT_EQ(batch.dropped_before(), 5u);
  v1::ResultBatch back;
  ASSERT_TRUE(decode_batch(encode_batch(batch), &back));
  EXPECT_EQ(back.batch_id(), batch.batch_id());
  EXPECT_EQ(back.results_size(), 3);
  EXPECT_NE(make_batch_id(1700000000000, 7), make_batch_id(1700000000000, 8));
  EXPECT_NE(make_batch_id(1700000000000, 7), make_batch_id(1700000000001, 7))
      << "a restart a millisecond later gets new ids";
}

}  // namespace
}  // namespace pingmesh::agent
