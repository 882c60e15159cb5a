#include "agent/outcome.hpp"

#include <algorithm>
#include <cerrno>

namespace pingmesh::agent {

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kDrop:
      return "drop";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kError:
      return "error";
  }
  return "error";
}

uint64_t syn_retransmit_time_us(uint32_t k, uint32_t linear_timeouts) {
  // RTO number i (0-based) is 1 s while i <= linear_timeouts, then doubles; retransmission k
  // leaves when the first k RTOs have expired.
  uint64_t t = 0;
  uint64_t rto = kSynRtoUs;
  for (uint32_t i = 0; i < k && i < 64; ++i) {
    if (i > linear_timeouts) rto = std::min<uint64_t>(rto * 2, kSynRtoMaxUs);
    t += rto;
  }
  return t;
}

uint32_t syn_retransmits_from_connect_time(uint32_t connect_us, uint32_t linear_timeouts) {
  uint32_t k = 0;
  while (k < 32 && connect_us >= syn_retransmit_time_us(k + 1, linear_timeouts)) ++k;
  return k;
}

uint32_t handshake_retransmits(uint32_t kernel_retransmits, uint32_t kernel_rtt_us) {
  if (kernel_retransmits > 0) return kernel_retransmits;
  return kernel_rtt_us >= kSynRtoUs ? 1 : 0;
}

Outcome classify_tcp_connect(int so_error, uint32_t retransmits, bool timed_out) {
  if (timed_out) return Outcome::kTimeout;
  switch (so_error) {
    case 0:
      return retransmits > 0 ? Outcome::kDrop : Outcome::kOk;
    case ECONNREFUSED:
    case ECONNRESET:
      return Outcome::kRefused;
    case ETIMEDOUT:
      return Outcome::kTimeout;
    default:
      return Outcome::kError;
  }
}

Outcome classify_http(bool response_ok, uint32_t syn_retransmits) {
  if (!response_ok) return Outcome::kError;
  return syn_retransmits > 0 ? Outcome::kDrop : Outcome::kOk;
}

uint32_t choose_tcp_rtt(uint32_t kernel_rtt_us, uint32_t user_elapsed_us, uint32_t retransmits) {
  if (retransmits > 0) return user_elapsed_us;
  if (kernel_rtt_us > 0 && kernel_rtt_us <= user_elapsed_us + 50) return kernel_rtt_us;
  return user_elapsed_us;
}

void LossAccount::add(Outcome o) { ++counts_[static_cast<int>(o)]; }

double LossAccount::connect_loss() const {
  uint64_t ok = count(Outcome::kOk), drop = count(Outcome::kDrop);
  return ok + drop == 0 ? 0.0 : static_cast<double>(drop) / static_cast<double>(ok + drop);
}

double LossAccount::datagram_loss() const {
  uint64_t ok = count(Outcome::kOk), lost = count(Outcome::kTimeout);
  return ok + lost == 0 ? 0.0 : static_cast<double>(lost) / static_cast<double>(ok + lost);
}

}  // namespace pingmesh::agent
