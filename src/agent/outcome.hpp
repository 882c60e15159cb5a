#pragma once
/// Loss accounting: how raw observations of a probe become an Outcome, and the paper's loss
/// rate over outcomes. Pure functions, no sockets.

#include <cstdint>

#include "agent/result.hpp"

namespace pingmesh::agent {

/// Linux's SYN retransmission ladder with the default 1 s initial RTO, the fallback when TCP_INFO's
/// counters are not available: returns the retransmissions k implied by a connect time. With
/// `linear_timeouts` = net.ipv4.tcp_syn_linear_timeouts (Linux 6.5+, default 4; 0 on older
/// kernels) the first linear_timeouts + 1 RTOs stay at 1 s and the later ones double, so the k-th
/// retransmission leaves at 1, 2, 3, 4, 5, 7, 11, ... s (linear_timeouts = 4) or at 1, 3, 7, 15, ... s
/// (linear_timeouts = 0).
uint32_t syn_retransmits_from_connect_time(uint32_t connect_us, uint32_t linear_timeouts);

/// Time after the first SYN at which retransmission number k (1-based) leaves, in microseconds,
/// on the ladder described above; 0 for k = 0.
uint64_t syn_retransmit_time_us(uint32_t k, uint32_t linear_timeouts);

/// Linux's initial SYN (and SYN-ACK) retransmission timeout, TCP_TIMEOUT_INIT.
inline constexpr uint32_t kSynRtoUs = 1000000;
/// Linux's largest RTO, TCP_RTO_MAX.
inline constexpr uint64_t kSynRtoMaxUs = 120000000;

/// Retransmissions in the handshake of a connect that succeeded, from TCP_INFO: our own SYN
/// retransmissions (`tcpi_total_retrans`) when there were any; otherwise 1 when the kernel's
/// handshake RTT sample (`tcpi_rtt`, SYN sent to SYN-ACK received) is a SYN RTO or longer. That
/// happens when the peer's SYN-ACK was lost and the peer's own timer resent it before ours fired
/// (a path RTT of 1 s would have made us retransmit the SYN), so it is a lost packet too.
uint32_t handshake_retransmits(uint32_t kernel_retransmits, uint32_t kernel_rtt_us);

/// Classifies a finished TCP connect attempt. `so_error` is SO_ERROR (0 = connected),
/// `retransmits` the SYN retransmissions seen, `timed_out` true when the probe's deadline passed
/// before the connect finished. Connected after >= 1 retransmission is a DROP (the paper counts
/// it as one drop however many were needed); RST is REFUSED; a failed connect is not a drop.
Outcome classify_tcp_connect(int so_error, uint32_t retransmits, bool timed_out);

/// Classifies a finished HTTP probe: `response_ok` when the answer was complete (status 200 and
/// the requested body size), `syn_retransmits` the SYN retransmissions of its connect. A good
/// answer whose connect needed >= 1 retransmission is a DROP, as for TCP (the collector's HTTP loss
/// is DROP / (OK + DROP)); a bad or incomplete answer is an ERROR.
Outcome classify_http(bool response_ok, uint32_t syn_retransmits);

/// Picks the handshake RTT to report. The kernel's first RTT sample (TCP_INFO tcpi_rtt) is taken
/// when it is plausible, i.e. positive and not larger than the user-space elapsed time around the
/// non-blocking connect (plus 50 us of slack); after a retransmission (Karn: no sample) and
/// otherwise, the user-space elapsed time is used.
uint32_t choose_tcp_rtt(uint32_t kernel_rtt_us, uint32_t user_elapsed_us, uint32_t retransmits);

/// Counts outcomes of one series and computes the paper's loss rate:
/// (probes with >= 1 SYN retransmission) / (successful probes); failed probes (timeout, refused,
/// error) are not in the denominator, because a dead server is not network loss. For UDP and
/// ICMP a timeout is a lost packet: datagram_loss() = timeouts / (ok + timeouts).
class LossAccount {
 public:
  void add(Outcome o);
  uint64_t count(Outcome o) const { return counts_[static_cast<int>(o)]; }
  /// TCP loss as in the paper; 0 when nothing succeeded.
  double connect_loss() const;
  /// UDP/ICMP loss: timeouts over answered + timed out; 0 when empty.
  double datagram_loss() const;

 private:
  uint64_t counts_[6] = {};
};

}  // namespace pingmesh::agent
