#pragma once
/// The probe engine: one thread, one epoll loop and non-blocking sockets. It runs the schedule
/// and every prober (TCP, UDP, ICMP, HTTP over IPv4 and IPv6); no thread or process per probe.
/// Timer wake-ups are batched into slots (ScheduleOptions::slot_us): every probe due in a slot
/// fires on one wake-up. It owns the TCP and UDP echo responders (responder.hpp), which answer
/// on a thread of their own so that no answer waits behind a slot's burst.
///
/// Thread-safety: set_pinglist() may be called from any thread; open/start/stop from one owner.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "agent/metrics.hpp"
#include "agent/result.hpp"
#include "agent/schedule.hpp"
#include "common/net.hpp"
#include "model/pinglist.hpp"

namespace pingmesh::agent {

/// Sockets, limits and timeouts of the engine.
struct EngineOptions {
  /// Addresses the responders listen on; empty = every address (0.0.0.0 and ::). Probes leave
  /// from the first listen address of the target's family when one is given.
  std::vector<net::IpAddress> listen_addresses;
  uint16_t tcp_port = model::kDefaultTcpPort;  ///< 0 = ephemeral (see Engine::tcp_port())
  uint16_t udp_port = model::kDefaultUdpPort;  ///< 0 = ephemeral (see Engine::udp_port())
  ScheduleOptions schedule;
  uint32_t probe_timeout_ms = 5000;  ///< room for two SYN retransmissions (1 s + 2 s)
  std::size_t responder_max_connections = 1024;
  uint32_t responder_idle_timeout_ms = 10000;
  uint64_t token = 0;  ///< identifies this agent's UDP/ICMP probes; 0 = random
  bool enable_responders = true;
};

/// Receives finished results from the loop thread (the vector is moved from).
using ResultSink = std::function<void(std::vector<ProbeResult>*)>;

class Engine {
 public:
  Engine(EngineOptions options, AgentMetrics& metrics, ResultSink sink);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Opens the responders' listening sockets and the probe sockets (raw ICMP needs CAP_NET_RAW
  /// or ping_group_range; without them ICMP is unavailable, not an error). Call before dropping
  /// privileges. Throws std::system_error when a responder port cannot be bound.
  void open();
  /// Starts the loop thread.
  void start();
  /// Stops and joins the loop thread; probes in flight are abandoned. Idempotent.
  void stop();

  /// Hands a new pinglist to the loop (applied on its next wake-up; unchanged tasks keep their
  /// schedule). nullptr or a stopped pinglist drops every task: probing stops, responders go on.
  void set_pinglist(std::shared_ptr<const model::Pinglist> pinglist);

  /// Bound responder ports (after open()).
  uint16_t tcp_port() const;
  uint16_t udp_port() const;
  /// True when ICMP echo probes can be sent for IPv4 (v6 = false) or IPv6 (v6 = true).
  bool icmp_available(bool v6) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pingmesh::agent
