#include "agent/seq_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>

namespace pingmesh::agent {
namespace {

TEST(SeqTable, FindsWhatWasClaimedAndForgetsWhatWasReleased) {
  SeqTable t;
  EXPECT_EQ(t.find(7), SeqTable::kNone);  // empty: nothing allocated yet
  ASSERT_TRUE(t.claim(7, 3));
  EXPECT_EQ(t.find(7), 3u);
  EXPECT_EQ(t.find(8), SeqTable::kNone);
  EXPECT_EQ(t.size(), 1u);
  t.release(7, 3);
  EXPECT_EQ(t.find(7), SeqTable::kNone);
  EXPECT_EQ(t.size(), 0u);
}

TEST(SeqTable, ASequenceInTheSameCellIsRefusedNotMistaken) {
  SeqTable t(/*max_cells=*/16, /*initial_cells=*/16);
  ASSERT_TRUE(t.claim(5, 1));
  EXPECT_FALSE(t.claim(5 + 16, 2));            // the cell is live: the caller moves on
  EXPECT_EQ(t.find(5 + 16), SeqTable::kNone);  // not mistaken for sequence 5's probe
  EXPECT_EQ(t.find(5), 1u);
}

TEST(SeqTable, AStaleReleaseLeavesALiveProbeAlone) {
  SeqTable t;
  ASSERT_TRUE(t.claim(9, 4));
  t.release(9, 5);  // another probe slot's stale sequence
  EXPECT_EQ(t.find(9), 4u);
  t.release(10, 4);
  EXPECT_EQ(t.find(9), 4u);
}

TEST(SeqTable, GrowsWithoutLosingOrMixingLiveSequences) {
  SeqTable t(/*max_cells=*/65536, /*initial_cells=*/4);
  std::deque<uint32_t> live;
  uint32_t next = 100;
  // A sliding window of 1,000 probes in flight, over 20,000 sequences: every live sequence
  // stays findable with its own value through every doubling.
  for (int i = 0; i < 20000; ++i) {
    uint32_t seq = next++;
    while (!t.claim(seq, seq * 3)) seq = next++;
    live.push_back(seq);
    if (live.size() > 1000) {
      t.release(live.front(), live.front() * 3);
      live.pop_front();
    }
  }
  EXPECT_EQ(t.size(), live.size());
  EXPECT_LE(t.cells(), 4096u);  // doubled only until half full: 2,048 cells hold 1,000
  EXPECT_GE(t.cells(), 2048u);
  for (uint32_t seq : live) EXPECT_EQ(t.find(seq), seq * 3) << seq;
  EXPECT_EQ(t.find(live.front() - 1), SeqTable::kNone);
}

TEST(SeqTable, SixteenBitSequencesWrapIntoTheSameCells) {
  SeqTable t;  // 65,536 cells at most: an ICMP sequence's wrap keeps its cell
  uint16_t seq = 65535;
  ASSERT_TRUE(t.claim(seq, 1));
  ++seq;  // wraps to 0
  ASSERT_TRUE(t.claim(seq, 2));
  EXPECT_EQ(t.find(65535), 1u);
  EXPECT_EQ(t.find(0), 2u);
}

TEST(SeqTable, AFullTableRefusesEverySequence) {
  SeqTable t(/*max_cells=*/8, /*initial_cells=*/8);
  for (uint32_t s = 0; s < 8; ++s) ASSERT_TRUE(t.claim(s, s));
  for (uint32_t s = 8; s < 24; ++s) EXPECT_FALSE(t.claim(s, s));
  t.release(3, 3);
  EXPECT_TRUE(t.claim(11, 11));  // the freed cell takes the next sequence that maps to it
}

TEST(RecentSeqs, RemembersAnAnsweredSequenceUntilItsCellIsReused) {
  RecentSeqs r;
  EXPECT_EQ(r.find(0), 0u);
  r.add(42, 7);
  EXPECT_EQ(r.find(42), 7u);
  EXPECT_EQ(r.find(43), 0u);
  for (uint32_t s = 43; s < 42 + RecentSeqs::kCells; ++s) r.add(s, 8);
  EXPECT_EQ(r.find(42), 7u);  // 8,191 later answers keep it
  r.add(42 + RecentSeqs::kCells, 9);
  EXPECT_EQ(r.find(42), 0u);  // the 8,192nd takes its cell
  EXPECT_EQ(r.find(42 + RecentSeqs::kCells), 9u);
}

}  // namespace
}  // namespace pingmesh::agent
