#pragma once
/// The agent's TCP and UDP echo responders (every agent is also a target), on a thread and an
/// epoll loop of their own: the probe engine's loop wakes once per timer slot and sends the
/// slot's probes as a burst, and an answer to another agent must not wait behind that burst (it
/// would add the wait to the other agent's RTT). The HTTP /ping responder lives in the agent's
/// HTTP server (agent.cpp).
///
/// Bounded: at most `max_connections` open TCP connections (more are reset and counted), each
/// closed after `idle_timeout_ms` without traffic and after echoing 64 KiB; UDP answers are the
/// size of the probe they answer, to our probe datagrams only.
///
/// Thread-safety: open/start/stop from one owner; the port getters after open().
#include <cstdint>
#include <memory>
#include <vector>

#include "agent/metrics.hpp"
#include "common/net.hpp"

namespace pingmesh::agent {

struct ResponderOptions {
  /// Addresses to listen on; empty = every address (0.0.0.0 and ::).
  std::vector<net::IpAddress> listen_addresses;
  uint16_t tcp_port = 0;  ///< 0 = ephemeral (see Responder::tcp_port())
  uint16_t udp_port = 0;  ///< 0 = ephemeral (see Responder::udp_port())
  std::size_t max_connections = 1024;
  uint32_t idle_timeout_ms = 10000;
};

class Responder {
 public:
  Responder(ResponderOptions options, AgentMetrics& metrics);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  /// Binds the TCP listeners and UDP echo sockets. Throws std::system_error naming the address
  /// and port when one cannot be bound.
  void open();
  /// Starts the responder thread.
  void start();
  /// Stops and joins the thread; open connections are reset. Idempotent.
  void stop();

  uint16_t tcp_port() const;
  uint16_t udp_port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pingmesh::agent
