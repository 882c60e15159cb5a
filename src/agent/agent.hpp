#pragma once
/// A whole agent: the probe engine (event loop thread), the control thread (heartbeat, pinglist
/// pull), the uploader thread, the HTTP responder (/ping, /metrics, /healthz) and the optional
/// local result log, wired together. `pingmesh agent` runs one; tests run several in-process.

#include <cstdint>
#include <memory>
#include <string>

#include "agent/config.hpp"
#include "common/metrics.hpp"

namespace pingmesh::agent {

class Agent {
 public:
  /// Validates the configuration; throws std::invalid_argument naming the setting at fault.
  explicit Agent(AgentConfig config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// Opens every socket (throws std::system_error when a port cannot be bound), drops
  /// capabilities when configured, then starts the threads.
  void start();
  /// Stops probing, flushes what it can to the collector, joins the threads. Idempotent.
  void stop();

  /// Bound ports (after start(); useful with port 0).
  uint16_t tcp_port() const;
  uint16_t udp_port() const;
  uint16_t http_port() const;
  /// The agent's name (configured or the hostname).
  const std::string& name() const;
  /// True while a pinglist is being probed.
  bool probing() const;
  /// Consecutive failed pinglist pulls.
  uint32_t failed_pulls() const;
  /// Results waiting in the buffer.
  std::size_t buffered() const;
  /// The metrics registry (what /metrics renders).
  metrics::Registry& registry();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// The agent's version string.
const char* agent_version();

}  // namespace pingmesh::agent
