#include "agent/outcome.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <iterator>

namespace pingmesh::agent {
namespace {

TEST(Outcome, TcpConnectClassification) {
  EXPECT_EQ(classify_tcp_connect(0, 0, false), Outcome::kOk);
  EXPECT_EQ(classify_tcp_connect(0, 1, false), Outcome::kDrop);
  EXPECT_EQ(classify_tcp_connect(0, 2, false), Outcome::kDrop) << "two retransmissions = one drop";
  EXPECT_EQ(classify_tcp_connect(ECONNREFUSED, 0, false), Outcome::kRefused);
  EXPECT_EQ(classify_tcp_connect(0, 0, true), Outcome::kTimeout);
  EXPECT_EQ(classify_tcp_connect(ETIMEDOUT, 3, false), Outcome::kTimeout);
  EXPECT_EQ(classify_tcp_connect(EHOSTUNREACH, 0, false), Outcome::kError);
}

TEST(Outcome, LostSynAckCountsAsARetransmission) {
  EXPECT_EQ(handshake_retransmits(0, 95), 0u);
  EXPECT_EQ(handshake_retransmits(0, 999'999), 0u);
  EXPECT_EQ(handshake_retransmits(1, 1'000'120), 1u) << "our SYN was retransmitted";
  EXPECT_EQ(handshake_retransmits(2, 0), 2u);
  // No SYN retransmission of ours, but SYN -> SYN-ACK took the peer's 1 s SYN-ACK timer: the
  // first SYN-ACK was lost (seen in the lab with loss on the reverse path).
  EXPECT_EQ(handshake_retransmits(0, 1'000'180), 1u);
  EXPECT_EQ(classify_tcp_connect(0, handshake_retransmits(0, 1'000'180), false), Outcome::kDrop);
  EXPECT_EQ(choose_tcp_rtt(1'000'180, 1'000'250, handshake_retransmits(0, 1'000'180)), 1'000'250u);
}

TEST(Outcome, HttpConnectRetransmissionIsADrop) {
  EXPECT_EQ(classify_http(true, 0), Outcome::kOk);
  EXPECT_EQ(classify_http(true, 1), Outcome::kDrop) << "SYN retransmitted, then answered";
  EXPECT_EQ(classify_http(true, 3), Outcome::kDrop);
  EXPECT_EQ(classify_http(false, 0), Outcome::kError);
  EXPECT_EQ(classify_http(false, 1), Outcome::kError) << "a bad answer is a failure, not loss";
}

TEST(Outcome, SynRetransmitLadderWithoutLinearTimeouts) {
  // Before Linux 6.5 (or tcp_syn_linear_timeouts = 0): RTOs 1, 2, 4 s -> SYNs at 1, 3, 7 s.
  EXPECT_EQ(syn_retransmit_time_us(0, 0), 0u);
  EXPECT_EQ(syn_retransmit_time_us(1, 0), 1'000'000u);
  EXPECT_EQ(syn_retransmit_time_us(2, 0), 3'000'000u);
  EXPECT_EQ(syn_retransmit_time_us(3, 0), 7'000'000u);
  EXPECT_EQ(syn_retransmits_from_connect_time(250, 0), 0u);
  EXPECT_EQ(syn_retransmits_from_connect_time(999'999, 0), 0u);
  EXPECT_EQ(syn_retransmits_from_connect_time(1'000'300, 0), 1u);
  EXPECT_EQ(syn_retransmits_from_connect_time(2'000'300, 0), 1u);
  EXPECT_EQ(syn_retransmits_from_connect_time(3'000'300, 0), 2u);
  EXPECT_EQ(syn_retransmits_from_connect_time(7'000'300, 0), 3u);
}

TEST(Outcome, SynRetransmitLadderWithLinearTimeouts) {
  // Linux 6.5+ default tcp_syn_linear_timeouts = 4: RTOs 1, 1, 1, 1, 1, 2, 4 s -> SYNs at 1, 2, 3,
  // 4, 5, 7, 11 s (a capture on this kernel showed 1.03 1.02 1.02 1.02 1.02 2.02 4.19 s gaps).
  const uint64_t want[] = {0, 1, 2, 3, 4, 5, 7, 11, 19};
  for (uint32_t k = 0; k < std::size(want); ++k) {
    EXPECT_EQ(syn_retransmit_time_us(k, 4), want[k] * 1'000'000) << "retransmission " << k;
  }
  EXPECT_EQ(syn_retransmits_from_connect_time(400, 4), 0u);
  EXPECT_EQ(syn_retransmits_from_connect_time(1'000'300, 4), 1u);
  EXPECT_EQ(syn_retransmits_from_connect_time(2'000'300, 4), 2u) << "the old ladder said 1";
  EXPECT_EQ(syn_retransmits_from_connect_time(3'000'300, 4), 3u);
  EXPECT_EQ(syn_retransmits_from_connect_time(4'000'300, 4), 4u);
  EXPECT_EQ(syn_retransmits_from_connect_time(6'999'000, 4), 5u);
  EXPECT_EQ(syn_retransmits_from_connect_time(7'000'300, 4), 6u);
  // Large values stay bounded (RTO capped at 120 s).
  EXPECT_EQ(syn_retransmit_time_us(20, 0) - syn_retransmit_time_us(19, 0), kSynRtoMaxUs);
}

TEST(Outcome, KernelRttPreferredWhenPlausible) {
  EXPECT_EQ(choose_tcp_rtt(40, 60, 0), 40u);
  EXPECT_EQ(choose_tcp_rtt(0, 60, 0), 60u) << "no kernel sample";
  EXPECT_EQ(choose_tcp_rtt(5000, 60, 0), 60u) << "kernel value larger than the elapsed time";
  EXPECT_EQ(choose_tcp_rtt(40, 1'000'100, 1), 1'000'100u) << "after a retransmission (Karn)";
}

TEST(Outcome, PaperLossExcludesFailedProbes) {
  LossAccount a;
  for (int i = 0; i < 998; ++i) a.add(Outcome::kOk);
  a.add(Outcome::kDrop);
  a.add(Outcome::kDrop);
  for (int i = 0; i < 50; ++i) a.add(Outcome::kTimeout);  // a dead server is not loss
  a.add(Outcome::kRefused);
  EXPECT_DOUBLE_EQ(a.connect_loss(), 2.0 / 1000.0);
  EXPECT_EQ(a.count(Outcome::kTimeout), 50u);
}

TEST(Outcome, DatagramLoss) {
  LossAccount a;
  EXPECT_EQ(a.datagram_loss(), 0.0);
  for (int i = 0; i < 95; ++i) a.add(Outcome::kOk);
  for (int i = 0; i < 5; ++i) a.add(Outcome::kTimeout);
  EXPECT_DOUBLE_EQ(a.datagram_loss(), 0.05);
}

TEST(Outcome, Names) {
  EXPECT_EQ(to_string(Outcome::kDrop), "drop");
  EXPECT_EQ(to_string(Outcome::kRefused), "refused");
}

}  // namespace
}  // namespace pingmesh::agent
