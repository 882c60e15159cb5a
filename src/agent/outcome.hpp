#pragma once
/// Loss accounting: how raw observations of a probe become an Outcome, and the paper's loss
/// rate over outcomes. Pure functions, no sockets.

#include <cstdint>

#include "agent/result.hpp"

namespace pingmesh::agent {

/// Linux's SYN retransmission ladder with the default 1 s initial RTO: a connect that needed k
/// retransmissions took at least 1 s, 3 s, 7 s, ... Returns the k implied by a connect time, the
/// fallback when TCP_INFO's counters are not available.
uint32_t syn_retransmits_from_connect_time(uint32_t connect_us);

/// Classifies a finished TCP connect attempt. `so_error` is SO_ERROR (0 = connected),
/// `retransmits` the SYN retransmissions seen, `timed_out` true when the probe's deadline passed
/// before the connect finished. Connected after >= 1 retransmission is a DROP (the paper counts
/// it as one drop however many were needed); RST is REFUSED; a failed connect is not a drop.
Outcome classify_tcp_connect(int so_error, uint32_t retransmits, bool timed_out);

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
