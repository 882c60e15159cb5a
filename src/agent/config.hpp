#pragma once
/// The agent's configuration: every setting, its default, and the YAML file form. A config file
/// holds the same keys as the long flags (`max-rate: 500` or `max_rate: 500`); lists are YAML
/// sequences; flags given on the command line win over the file.

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/topology.hpp"

namespace pingmesh::agent {

struct AgentConfig {
  std::string server_url = "http://127.0.0.1:9000";  ///< controller
  std::string collector_url;                         ///< empty = server_url
  std::string token;                                 ///< bearer token (agent role)
  std::string name;                                  ///< empty = hostname
  std::vector<std::string> addresses;  ///< reported; empty = non-loopback interface addresses
  std::string dc;                      ///< DC hint sent with heartbeats
  std::vector<std::string> listen_addresses;  ///< responders; empty = all
  uint16_t tcp_port = model::kDefaultTcpPort;
  uint16_t udp_port = model::kDefaultUdpPort;
  uint16_t http_port = model::kDefaultHttpPort;
  double max_rate = 1000;            ///< probes/s
  uint32_t max_inflight = 1000;      ///< probes in flight
  uint32_t probe_timeout_ms = 5000;  ///< per probe
  uint32_t slot_ms = 25;             ///< timer batching slot (docs/AGENT.md)
  std::size_t buffer_results = 100000;
  std::size_t batch_size = 5000;
  uint32_t batch_interval_ms = 5000;
  uint32_t upload_attempts = 5;
  uint32_t upload_backoff_ms = 500;
  uint32_t upload_backoff_max_ms = 30000;
  uint32_t heartbeat_interval_ms = 10000;
  uint32_t pull_interval_ms = 10000;
  uint32_t max_failed_pulls = 3;
  uint32_t trace_interval_ms = 10000;  ///< polls for trace requests; 0 = tracer off
  double trace_max_rate = 200;         ///< traceroute probes/s
  uint32_t responder_max_connections = 1024;
  uint32_t responder_idle_timeout_ms = 10000;
  /// Lab only: lowers the 10 s floor of a pair's probe interval (0 = no override).
  uint32_t lab_min_interval_ms = 0;
  std::string result_log;  ///< JSON-lines file; empty = none
  uint64_t result_log_max_bytes = 64ull << 20;
  std::string log_level = "info";
  bool drop_privileges = true;  ///< drop capabilities once sockets are open
};

/// Reads a YAML mapping of option names to values (scalars or sequences of scalars) as
/// (name, values) pairs, with '_' in names turned into '-'. Throws std::runtime_error naming the
/// key at fault when the document is not such a mapping.
std::vector<std::pair<std::string, std::vector<std::string>>> read_yaml_options(std::istream& in);

/// The host's name (gethostname).
std::string host_name();
/// The host's non-loopback, non-link-local interface addresses (getifaddrs), as text.
std::vector<std::string> interface_addresses();

}  // namespace pingmesh::agent
