#pragma once
/// Pure pinglist generation: from a topology and the time (for liveness) to a Plan, the
/// deterministic choice of who takes part, and from a Plan to each server's pinglist.
/// See src/pinglist/README.md for the algorithm.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/pinglist.hpp"
#include "model/topology.hpp"

namespace pingmesh::pinglist {

/// A probe kind resolved for one (level, source DC, target DC): protocol, port and parameters.
struct ResolvedProbe {
  model::Protocol protocol = model::Protocol::kTcp;
  uint16_t port = 0;
  uint8_t dscp = 0;
  uint32_t interval_ms = model::kMinIntervalMs;
  uint32_t payload_bytes = 0;
  bool operator==(const ResolvedProbe&) const = default;
};

/// Compact pinglist entry: indices into the Plan's tables (12 bytes).
struct CompactEntry {
  uint32_t target;    ///< index into Plan::servers
  uint16_t probes;    ///< index into Plan::probe_sets (a list of ResolvedProbe)
  model::Level level;
  bool operator==(const CompactEntry&) const = default;
};

/// The deterministic choice of participants and every server's compact pinglist.
struct Plan {
  /// All servers of the topology, sorted by name; index = server id in this plan.
  std::vector<const model::Server*> servers;
  std::unordered_map<std::string_view, uint32_t> index;  ///< name -> index
  std::vector<uint32_t> server_dc;                       ///< index into topology dcs
  std::vector<bool> alive;
  std::vector<bool> chosen;
  std::vector<std::vector<ResolvedProbe>> probe_sets;
  /// Per server: its entries (empty when not chosen or stopped), sorted.
  std::vector<std::vector<CompactEntry>> entries;
  /// Per server: the version (ETag) of its pinglist, a hash of everything it renders.
  std::vector<uint64_t> version;
  std::vector<bool> stopped;  ///< kill switch applies to this server
  std::shared_ptr<const model::Topology> topology;  ///< keeps the pointers valid
};

/// Liveness of each server: alive[i] is for topology.servers[i].
using Liveness = std::vector<bool>;

/// Liveness from the servers' own last_seen_ms: alive when last_seen_ms > 0 and
/// now_ms - last_seen_ms <= settings.liveness_timeout_s * 1000.
Liveness liveness_at(const model::Topology& topology, int64_t now_ms);

/// Builds the plan. Deterministic: equal topologies and equal liveness give equal plans
/// (the order of topology.servers does not matter).
Plan generate(std::shared_ptr<const model::Topology> topology, const Liveness& alive);

/// The pinglist of server `index` in a plan.
model::Pinglist pinglist_of(const Plan& plan, uint32_t index);


}  // namespace pingmesh::pinglist
