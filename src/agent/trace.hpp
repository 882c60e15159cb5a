#pragma once
/// TCP traceroute without raw sockets, on the server's request (docs/AGENT.md "Tracer").
///
/// A probe is a non-blocking connect() from a fixed source port with IP_TTL / IPV6_UNICAST_HOPS
/// set: a router where the TTL runs out answers ICMP time-exceeded, which the kernel hands to the
/// socket's error queue (IP_RECVERR / IPV6_RECVERR) with the router's address as the offender; a
/// probe that reaches the target is answered by a SYN-ACK (or a RST). Per source port the tracer
/// learns the path (hop addresses by TTL), then measures the port's loss with full-TTL connects,
/// so the server can tell which spine each port crosses and how lossy each spine is.
///
/// Safety: the agent traces only (address, port) pairs that are TCP targets of its current
/// pinglist, nothing while its pinglist is stopped (kill switch), one request at a time, at most
/// `max_rate` probes/s, with caps on ports, TTL and probes per request.
///
/// Pure parts (request parsing and validation, error-queue decoding, result JSON) are tested
/// without sockets; run_trace() is tested on loopback.

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/net.hpp"
#include "model/pinglist.hpp"

namespace pingmesh::agent {

/// Caps on what one request may ask for (requests beyond them are rejected, not trimmed).
struct TraceLimits {
  uint32_t max_ports = 64;
  uint32_t max_ttl = 16;
  uint32_t max_hop_attempts = 4;
  uint32_t max_loss_probes = 256;
  uint32_t max_timeout_ms = 2000;
  uint32_t max_requests = 4;  ///< per poll
};

/// One trace request from the server (GET /api/v1/traces/requests/{agent}).
struct TraceRequest {
  std::string id;
  net::IpAddress dst;
  uint16_t dport = 0;
  std::vector<uint16_t> sports;  ///< distinct, non-zero
  uint32_t max_ttl = 8;          ///< TTLs 1..max_ttl, stopping at the target
  uint32_t hop_attempts = 2;     ///< probes per (port, TTL) until one is answered
  uint32_t loss_probes = 32;     ///< full-TTL connects per port
  uint32_t timeout_ms = 500;     ///< a probe unanswered this long counts as lost
};

/// Parses {"requests": [{"id","dst","dport","sports":[...],"max_ttl","hop_attempts",
/// "loss_probes","timeout_ms"}]}. On error returns false and sets *error naming the field.
bool parse_trace_requests(std::string_view body, const TraceLimits& limits,
                          std::vector<TraceRequest>* out, std::string* error);

/// An ICMP error read from a socket's error queue.
struct IcmpReport {
  enum class Kind { kTimeExceeded, kUnreachable, kOther };
  Kind kind = Kind::kOther;
  uint8_t type = 0;
  uint8_t code = 0;
  net::IpAddress offender;  ///< the router (or host) that sent it; family 0 when absent
};

/// Decodes the IP_RECVERR / IPV6_RECVERR control message of a recvmsg(MSG_ERRQUEUE); nullopt
/// when the message holds none or its origin is not ICMP / ICMPv6. Pure.
std::optional<IcmpReport> parse_errqueue(const msghdr& msg);

/// What one source port saw.
struct PortTrace {
  uint16_t sport = 0;
  std::vector<std::string> hops;  ///< address answering at TTL i+1; "" = no answer
  bool reached = false;           ///< a TTL-limited probe reached the target
  uint32_t sent = 0;              ///< full-TTL probes
  uint32_t answered = 0;          ///< ... answered (SYN-ACK or RST) within timeout_ms
  uint32_t errors = 0;            ///< probes not sent (bind/connect failed locally)
};

/// The result of one request.
struct TraceResult {
  std::string id;
  net::IpAddress dst;
  uint16_t dport = 0;
  std::vector<PortTrace> ports;
  int64_t duration_ms = 0;
};

/// {"id","dst","dport","duration_ms","ports":[{"sport","hops","reached","sent","answered",
/// "errors"}]}.
std::string trace_results_json(const std::string& agent, const std::vector<TraceResult>& results);

/// Runs one request (blocks; every port concurrently, at most `max_rate` probes/s). A probe that
/// timed out stays open until it is answered or `drain_ms` passed (its kernel retransmits), so
/// the target holds no half-open state that would spoil the port's next probe; then every socket
/// is closed with a RST (SO_LINGER 0), leaving no TIME_WAIT behind. Returns early (what it has)
/// when *cancel becomes true.
TraceResult run_trace(const TraceRequest& request, double max_rate, uint32_t drain_ms = 3500,
                      const std::atomic<bool>* cancel = nullptr);

struct TracerOptions {
  std::string server_url;  ///< base URL, no trailing slash
  std::string token;
  std::string name;                   ///< this agent
  uint32_t poll_interval_ms = 10000;  ///< 0 = tracer off
  double max_rate = 200;              ///< probes/s
  uint32_t request_timeout_ms = 5000;
  TraceLimits limits;
};

/// The tracer's thread: polls the server for requests, runs them, posts the results
/// (POST /api/v1/traces).
class Tracer {
 public:
  explicit Tracer(TracerOptions options);
  ~Tracer();
  void start();
  void stop();
  /// The current pinglist (nullptr = none): its TCP targets are what may be traced. Thread-safe.
  void set_pinglist(const std::shared_ptr<const model::Pinglist>& pinglist);
  /// Requests run / refused so far.
  uint64_t traced() const { return traced_; }
  uint64_t refused() const { return refused_; }

 private:
  void run();
  void poll_once();

  TracerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::set<std::pair<net::IpAddress, uint16_t>> allowed_;
  std::thread thread_;
  std::atomic<uint64_t> traced_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<bool> cancel_{false};
};

}  // namespace pingmesh::agent
