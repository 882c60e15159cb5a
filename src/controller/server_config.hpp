#pragma once
/// Configuration of `pingmesh server`: flags, an optional YAML file with the same keys, and
/// environment variables for the tokens. Precedence: command-line flag > environment > file >
/// default.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/topology.hpp"

namespace pingmesh::controller {

/// Everything `pingmesh server` can be told. Keys of the config file are the flag names without
/// the leading dashes ("listen", "admin-token", ...); '_' may be written for '-'.
struct ServerConfig {
  std::string listen = "127.0.0.1:9000";  ///< host:port, [v6]:port; port 0 = ephemeral
  std::string db = "./pingmesh.db";       ///< SQLite file of the topology
  std::string admin_token;                ///< bearer token for writes; empty = loopback only
  std::string agent_token;                ///< bearer token for heartbeats; empty = open
  int threads = 8;  ///< HTTP I/O threads (handlers block on the WAL's fsync: more threads, bigger
                    ///< group commits)
  std::string log_level = "info";
  uint32_t min_interval_ms = model::kMinIntervalMs;  ///< lab override of the 10 s floor
  std::string import_file;                           ///< topology (JSON/YAML) imported at start
  std::size_t max_body_bytes = 16 << 20;             ///< larger request bodies get 413
  uint32_t heartbeat_interval_s = 10;                ///< told to agents
  std::string data_dir = "./pingmesh-data";          ///< collector: write-ahead log and aggregates
  std::string
      web_dir;  ///< built web UI (web/dist); empty = look beside the binary and in ./web/dist
  std::string alert_rules;                 ///< analyzer rules file; empty = defaults in memory
  std::vector<std::string> webhooks;       ///< alert notification webhooks
  std::vector<std::string> alertmanagers;  ///< Alertmanager base URLs
  uint32_t alert_history_days = 90;     ///< resolved alerts kept this long (data-dir/analyzer.db)
  uint32_t alert_history_max = 100000;  ///< and at most this many
  uint32_t grace_s = 120;  ///< collector: a 1-minute window accepts results this long after its end
};

/// The keys a config file may hold.
const std::set<std::string>& server_config_keys();

/// Keys of a later stage that the server's file may also hold (the collector's remote-write-*
/// keys): the controller does not link those stages, so the server command passes them in.
/// `apply(key, value)` takes one scalar (a sequence applies each element in order) and throws
/// std::invalid_argument for a bad value.
struct ExtraConfigKeys {
  std::vector<std::string> keys;
  std::function<void(const std::string& key, const std::string& value)> apply;
};

/// Reads the YAML file at `path` into `config`, leaving out the keys in `skip` (given as flags).
/// Throws std::runtime_error "PATH:LINE: message" for an unknown key, a bad value or a syntax
/// error, and "PATH: ..." when the file cannot be read.
void load_server_config(const std::string& path, ServerConfig* config,
                        const std::set<std::string>& skip = {},
                        const ExtraConfigKeys* extra = nullptr);

/// Checks the values (port range, thread count, interval floor, ...). Throws
/// std::invalid_argument naming the key.
void check_server_config(const ServerConfig& config);

/// A listen address split into host and port.
struct ListenAddress {
  std::string host;  ///< IPv4 or IPv6 literal, without brackets
  uint16_t port = 0;
};

/// Parses "127.0.0.1:9000", "[::1]:9000" or ":9000" (127.0.0.1). Throws std::invalid_argument.
ListenAddress parse_listen(std::string_view text);

}  // namespace pingmesh::controller
