#pragma once
/// What one probe produced, as the agent keeps it between the event loop and the uploader. The
/// wire form is pingmesh.v1.Result (proto/pingmesh.proto); see batch.hpp for the conversion.

#include <cstdint>
#include <memory>
#include <string>

#include "model/topology.hpp"

namespace pingmesh::agent {

/// Outcome of one probe; values equal pingmesh.v1.Outcome.
enum class Outcome : uint8_t { kOk = 1, kDrop = 2, kTimeout = 3, kRefused = 4, kError = 5 };

/// "ok", "drop", "timeout", "refused", "error".
std::string_view to_string(Outcome o);

/// Labels of a probe target, shared by all results of that target (immutable once built).
struct PeerLabels {
  std::string name;
  std::string address;  ///< IP address as text
  std::string dc;
  std::string rack;
};

/// One probe's result. Durations are microseconds; zero when not measured.
struct ProbeResult {
  std::shared_ptr<const PeerLabels> peer;
  int64_t timestamp_us = 0;  ///< probe start, Unix microseconds
  model::Protocol protocol = model::Protocol::kTcp;
  uint16_t port = 0;
  uint8_t dscp = 0;
  model::Level level = model::Level::kIntraRack;
  Outcome outcome = Outcome::kError;
  uint32_t rtt_us = 0;          ///< handshake / echo RTT; HTTP: total time
  uint32_t retransmits = 0;     ///< TCP SYN retransmissions
  uint32_t payload_bytes = 0;   ///< payload echoed
  uint32_t payload_rtt_us = 0;  ///< TCP: time to echo the payload after the handshake
  uint32_t ttfb_us = 0;         ///< HTTP: time to first byte (from probe start)
  uint32_t connect_us = 0;      ///< HTTP: connect time
  uint32_t seq = 0;             ///< UDP/ICMP sequence number
  uint32_t duplicates = 0;      ///< UDP/ICMP duplicate answers seen since the previous result
  bool reordered = false;       ///< UDP/ICMP: answered after a later sequence of the same target
};

}  // namespace pingmesh::agent
