#pragma once
/// The controller's authoritative topology: an immutable snapshot in memory (copy-on-write),
/// written through a TopologyStore after every change has been validated on the would-be
/// topology, so a rejected change alters nothing. Also tracks agents' heartbeats (liveness),
/// places switch-mode servers by address, and keeps the PinglistService up to date.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.hpp"
#include "common/net.hpp"
#include "model/topology.hpp"
#include "model/topology_json.hpp"
#include "pinglist/generator.hpp"
#include "pinglist/service.hpp"
#include "topology/store.hpp"

namespace pingmesh::controller {

/// A request the service refuses for a reason other than validation (which throws
/// model::ValidationError). The API maps kNotFound to 404 and kConflict to 409.
class ServiceError : public std::runtime_error {
 public:
  enum class Kind { kNotFound, kConflict };
  ServiceError(Kind kind, std::string field, const std::string& message)
      : std::runtime_error(message), kind_(kind), field_(std::move(field)) {}
  Kind kind() const { return kind_; }
  /// The field (or path parameter) at fault, e.g. "dc" or "name".
  const std::string& field() const { return field_; }

 private:
  Kind kind_;
  std::string field_;
};

/// One heartbeat of an agent (POST /api/v1/heartbeat).
struct Heartbeat {
  std::string name;      ///< the agent's server name (its hostname by default)
  std::string hostname;  ///< the machine's hostname
  std::vector<net::IpAddress> addresses;
  std::string version;                    ///< agent version
  std::vector<std::string> capabilities;  ///< probe kinds the agent supports (informational)
  std::string dc_hint;  ///< optional: search switch-mode placement only in this DC
};

/// Where a heartbeat's server is, after the service accepted it.
struct HeartbeatResult {
  std::string
      server;  ///< registered name (may differ from Heartbeat::name when matched by address)
  std::string dc;
  std::string rack;
  bool created = false;  ///< a switch-mode server created by this heartbeat
  bool changed = false;  ///< addresses, hostname or placement were updated
};

/// Counts of a bulk registration.
struct BulkResult {
  std::size_t created = 0;
  std::size_t updated = 0;
};

/// Kill-switch and liveness overview (GET /api/v1/status).
struct Status {
  bool stopped = false;
  std::vector<std::string> stopped_dcs;
  std::size_t servers = 0;
  std::size_t alive = 0;
  uint64_t generation = 0;
};

/// Options of a TopologyService.
struct TopologyServiceOptions {
  model::ValidationLimits limits;
  /// Wall clock in Unix ms; injected so tests control liveness.
  std::function<int64_t()> now_ms;
  /// Heartbeats are written to the store in batches at this period (and at stop()).
  std::chrono::milliseconds heartbeat_flush_period{5000};
  /// Period of the liveness check that lets the PinglistService regenerate.
  std::chrono::milliseconds tick_period{1000};
  /// Start the background thread (flush + tick). Tests drive tick()/flush_heartbeats() instead.
  bool background = true;
};

/// The authoritative topology. All methods are thread-safe. Mutations validate the whole
/// would-be topology first (throwing model::ValidationError naming the field, or ServiceError),
/// then write through the store, then publish the new snapshot and regenerate pinglists.
/// Reads never block on writes for longer than a pointer copy.
class TopologyService {
 public:
  /// Loads the topology from `store` and generates the first pinglists. `pinglists` may be
  /// null (tests of the topology alone). Neither pointer is owned; both must outlive this.
  TopologyService(topology::TopologyStore* store, pinglist::PinglistService* pinglists,
                  TopologyServiceOptions options, metrics::Registry* registry = nullptr);
  /// Stops the background thread and flushes pending heartbeats.
  ~TopologyService();
  TopologyService(const TopologyService&) = delete;
  TopologyService& operator=(const TopologyService&) = delete;

  /// The current topology. Servers' last_seen_ms/agent_version are as of the last config
  /// change; use with_state() for fresh values.
  std::shared_ptr<const model::Topology> snapshot() const;
  /// A copy of `server` with last_seen_ms/agent_version from the in-memory heartbeat map.
  model::Server with_state(const model::Server& server) const;
  /// True when the server's last heartbeat is within the liveness timeout.
  bool alive(const model::Server& server) const;
  /// Liveness of every server of `topology`, in its order (alive[i] for servers[i]).
  pinglist::Liveness liveness(const model::Topology& topology) const;
  /// The validation limits in force (the lab may allow intervals below 10 s).
  const model::ValidationLimits& limits() const { return options_.limits; }

  // Datacenters. Lookups throw ServiceError(kNotFound) for unknown names.
  model::Datacenter get_dc(std::string_view name) const;
  model::Datacenter create_dc(const model::Datacenter& dc);
  /// Replaces the DC `name` (renaming is refused). Switch-mode servers are re-placed.
  model::Datacenter replace_dc(std::string_view name, const model::Datacenter& dc);
  /// Applies a JSON merge of `patch` over the current DC (dc_from_json with a base).
  model::Datacenter patch_dc(std::string_view name, const nlohmann::json& patch);
  /// Deletes the DC with its racks, servers and the rules that name it.
  void delete_dc(std::string_view name);

  // Racks (switches in switch mode).
  std::vector<model::Rack> list_racks(std::string_view dc) const;
  model::Rack get_rack(std::string_view dc, std::string_view name) const;
  model::Rack create_rack(const model::Rack& rack);
  model::Rack replace_rack(std::string_view dc, std::string_view name, const model::Rack& rack);
  model::Rack patch_rack(std::string_view dc, std::string_view name, const nlohmann::json& patch);
  /// Deletes the rack. Rack mode: its servers are deleted too. Switch mode: its servers stay,
  /// re-placed under another switch whose CIDR holds their address, else unplaced.
  void delete_rack(std::string_view dc, std::string_view name);

  // Servers. Switch-mode servers with an empty rack are placed by address.
  model::Server get_server(std::string_view name) const;
  model::Server create_server(const model::Server& server);
  /// Creates or replaces (config fields) many servers at once, in one store transaction.
  /// Errors name the field as "[i].field" for the i-th input.
  BulkResult upsert_servers(const std::vector<model::Server>& servers);
  model::Server replace_server(std::string_view name, const model::Server& server);
  model::Server patch_server(std::string_view name, const nlohmann::json& patch);
  void delete_server(std::string_view name);

  // Rules.
  model::Rule get_rule(std::string_view name) const;
  model::Rule create_rule(const model::Rule& rule);
  model::Rule replace_rule(std::string_view name, const model::Rule& rule);
  model::Rule patch_rule(std::string_view name, const nlohmann::json& patch);
  void delete_rule(std::string_view name);

  // Settings and kill switch.
  model::Settings patch_settings(const nlohmann::json& patch);
  /// Stops probing everywhere (dc empty) or in one DC. Survives restarts (stored).
  void set_stopped(std::string_view dc, bool stopped);
  Status status() const;

  /// Replaces the whole topology (import). With `dry_run` only validates. Servers that keep
  /// their name keep their liveness.
  void import(const model::Topology& topology, bool dry_run = false);

  /// Records a heartbeat; see HeartbeatResult. Rack mode: the server must be registered (by
  /// name, else by address), else ServiceError(kNotFound). Switch mode: an unknown server is
  /// created under the switch whose CIDR holds one of its addresses, else ValidationError on
  /// "addresses"; a known one whose addresses changed is updated and re-placed.
  HeartbeatResult heartbeat(const Heartbeat& hb);

  /// Writes the heartbeats received since the last flush to the store (one transaction).
  /// Returns the number of records written.
  std::size_t flush_heartbeats();
  /// Lets the PinglistService regenerate if liveness changed, or if a heartbeat created or moved
  /// a server since the last generation. Returns true when it regenerated.
  bool tick();
  /// Stops the background thread and flushes heartbeats. Idempotent.
  void stop();

 private:
  struct Snapshot {
    std::shared_ptr<const model::Topology> topology;
    std::unordered_map<std::string, std::size_t> server_index;  // name -> index in servers
    std::map<net::IpAddress, std::size_t> address_index;        // address -> index in servers
  };
  struct LastSeen {
    int64_t last_seen_ms = 0;
    std::string agent_version;
    bool dirty = false;
  };

  std::shared_ptr<const Snapshot> current() const;
  /// Runs `write` (store calls) for the validated `next`, publishes it and regenerates the
  /// pinglists now, or at the next tick() when !regenerate_now (heartbeat-driven changes, which
  /// may come by the thousand when a switch-mode fleet starts). Caller holds write_mu_.
  void commit(model::Topology next, const std::function<void()>& write, bool regenerate_now = true);
  void publish(model::Topology next);
  void regenerate_locked();
  model::Topology copy_topology() const;
  /// Re-places every server of switch-mode DC `dc` by address; returns the changed servers.
  std::vector<model::Server> replace_servers_of(model::Topology& t, std::string_view dc) const;
  model::Server stateful(const model::Server& s) const;
  // The replace_* operations; caller holds write_mu_ (patches decode under the same lock).
  model::Datacenter replace_dc_locked(std::string_view name, const model::Datacenter& dc);
  model::Rack replace_rack_locked(std::string_view dc, std::string_view name,
                                  const model::Rack& rack);
  model::Server replace_server_locked(std::string_view name, const model::Server& server);
  model::Rule replace_rule_locked(std::string_view name, const model::Rule& rule);
  int64_t now() const { return options_.now_ms(); }
  void run_background();

  topology::TopologyStore* store_;
  pinglist::PinglistService* pinglists_;
  TopologyServiceOptions options_;

  mutable std::mutex snapshot_mu_;  // guards current_ (pointer swap only)
  std::shared_ptr<const Snapshot> current_;
  std::mutex write_mu_;              // serializes mutations, store access and pinglist regeneration
  bool regenerate_pending_ = false;  // guarded by write_mu_

  mutable std::mutex seen_mu_;
  std::unordered_map<std::string, LastSeen> seen_;

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;
  std::thread background_;

  metrics::Counter* heartbeats_total_ = nullptr;
  metrics::Counter* heartbeats_rejected_ = nullptr;
  metrics::Counter* changes_total_ = nullptr;
  metrics::Counter* flush_errors_ = nullptr;
  metrics::Gauge* servers_gauge_ = nullptr;
  metrics::Gauge* alive_gauge_ = nullptr;
};

/// The switch (rack) of switch-mode DC `dc` whose CIDR holds one of `addresses`, or empty.
/// Longest prefix wins when several hold it.
std::string place_by_address(const model::Topology& topology, std::string_view dc,
                             const std::vector<net::IpAddress>& addresses);

}  // namespace pingmesh::controller
