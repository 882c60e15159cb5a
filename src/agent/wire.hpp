#pragma once
/// Wire formats the agent speaks by hand on its event loop: the UDP probe datagram, ICMP echo
/// messages and a tiny incremental HTTP/1.1 response parser. Pure functions over bytes.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pingmesh::agent {

/// UDP probe datagram: "PMSH", version 1, type (1 request, 2 reply), 2 reserved bytes, sequence
/// (32-bit big-endian), the prober's 64-bit token, 4 reserved bytes, then padding up to the probe
/// size. A responder answers only requests of this format, with a datagram of the same size, and
/// marks it a reply, so two responders can never be made to bounce packets between them.
inline constexpr std::size_t kUdpHeaderBytes = 24;
/// Largest UDP probe the agent sends or echoes (fits an IPv4 datagram).
inline constexpr std::size_t kMaxDatagramBytes = 65000;

enum class UdpType : uint8_t { kRequest = 1, kReply = 2 };

/// Writes a probe of buf.size() bytes (>= kUdpHeaderBytes).
void encode_udp_probe(std::span<uint8_t> buf, UdpType type, uint32_t seq, uint64_t token);
/// Parses a probe header; false when the bytes are not one of ours.
bool decode_udp_probe(std::span<const uint8_t> buf, UdpType* type, uint32_t* seq, uint64_t* token);
/// Turns a valid request in place into its reply; false (and untouched) for anything else.
bool make_udp_reply(std::span<uint8_t> buf);

/// ICMP echo header + 8-byte token + padding: `buf.size()` bytes (>= 16). For IPv4 the checksum
/// is filled in; for ICMPv6 the kernel computes it.
void encode_icmp_echo(std::span<uint8_t> buf, bool v6, uint16_t id, uint16_t seq, uint64_t token);
/// Parses an echo reply. `has_ip_header`: raw IPv4 sockets deliver the IP header first.
bool decode_icmp_echo_reply(std::span<const uint8_t> buf, bool v6, bool has_ip_header, uint16_t* id,
                            uint16_t* seq, uint64_t* token);
/// The Internet checksum (RFC 1071).
uint16_t internet_checksum(std::span<const uint8_t> buf);

/// The GET request of an HTTP probe (HTTP/1.1, Connection: close).
std::string http_probe_request(std::string_view host, uint16_t port, uint32_t size);

/// Incremental parser of one HTTP/1.1 response: status line, headers (<= 8 KiB), body counted by
/// Content-Length (or until EOF when absent); the body is counted, not stored.
class HttpResponseParser {
 public:
  enum class State { kHead, kBody, kDone, kError };
  /// Feeds received bytes; returns the state after them.
  State feed(std::string_view data);
  /// The peer closed; completes a body without Content-Length.
  State on_eof();
  State state() const { return state_; }
  int status() const { return status_; }
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  State parse_head();
  State state_ = State::kHead;
  std::string head_;
  int status_ = 0;
  bool has_length_ = false;
  uint64_t content_length_ = 0;
  uint64_t body_bytes_ = 0;
};

}  // namespace pingmesh::agent
