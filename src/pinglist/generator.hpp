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

/// Compact pinglist entry: indices into the Plan's tables.
struct CompactEntry {
  uint32_t target;    ///< index into Plan::servers
  uint16_t probes;    ///< index into Plan::probe_sets (a list of ResolvedProbe)
  model::Level level;
  bool operator==(const CompactEntry&) const = default;
};

/// A participating rack: its chosen servers in slot order ("server i" of the rack is slots[i]).
struct ChosenRack {
  std::string_view name;
  std::vector<uint32_t> slots;  ///< indices into Plan::servers
};

/// Per-DC part of a plan.
struct DcPlan {
  const model::Datacenter* dc = nullptr;
  bool stopped = false;              ///< global or this DC's kill switch
  std::vector<ChosenRack> racks;     ///< participating racks in slot order
  std::vector<uint32_t> reps;        ///< servers taking part in inter-DC probing
  uint32_t probes_intra_rack = 0;    ///< probe set index (0 = the empty set)
  uint32_t probes_intra_dc = 0;
  std::vector<uint32_t> probes_inter_dc;  ///< per destination DC index
};

/// The deterministic choice of participants. Each server's pinglist is derived from it on demand
/// (entries_of), so a plan for 100,000 servers is small; versions are computed for all servers.
struct Plan {
  std::shared_ptr<const model::Topology> topology;  ///< keeps the pointers below valid
  std::vector<const model::Server*> servers;        ///< sorted by name
  std::unordered_map<std::string_view, uint32_t> index;  ///< name -> index into servers
  std::vector<DcPlan> dcs;                               ///< sorted by DC name
  std::vector<std::vector<ResolvedProbe>> probe_sets;    ///< [0] is the empty set
  std::vector<int32_t> server_dc;    ///< index into dcs, -1 when the DC is unknown
  std::vector<int32_t> server_rack;  ///< index into dcs[d].racks when chosen, else -1
  std::vector<int32_t> server_slot;  ///< slot in its rack when chosen, else -1
  std::vector<bool> alive;
  std::vector<bool> is_rep;          ///< takes part in inter-DC probing
  std::vector<uint64_t> version;     ///< per server: hash of everything its pinglist renders
  std::vector<uint32_t> entry_count; ///< per server: rendered entries (after address families)
  uint64_t content_hash = 0;         ///< hash of all versions (equal plans, equal hashes)
};

/// Liveness of each server: alive[i] is for topology.servers[i].
using Liveness = std::vector<bool>;

/// Liveness from the servers' own last_seen_ms: alive when last_seen_ms > 0 and
/// now_ms - last_seen_ms <= settings.liveness_timeout_s * 1000.
Liveness liveness_at(const model::Topology& topology, int64_t now_ms);

/// Builds the plan. Deterministic: equal topologies and equal liveness give equal plans
/// (the order of topology.servers does not matter).
Plan generate(std::shared_ptr<const model::Topology> topology, const Liveness& alive);

/// The compact entries of server `index`, sorted by (level, target); the peer cap applied.
void entries_of(const Plan& plan, uint32_t index, std::vector<CompactEntry>* out);

/// The pinglist of server `index` in a plan.
model::Pinglist pinglist_of(const Plan& plan, uint32_t index);

/// Number of servers to choose out of n for a ratio in (0,1]: ceil(ratio*n), at least 1 when n>0.
uint32_t choose_count(double ratio, std::size_t n);


}  // namespace pingmesh::pinglist
