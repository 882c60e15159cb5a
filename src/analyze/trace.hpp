#pragma once
/// Narrowing fabric loss to one spine by TCP traceroute from the agents (docs/ANALYZER.md,
/// "Narrowing a spine"). While a DC has a fabric_loss verdict, the coordinator asks the sources
/// of a few of the DC's worst cross-rack pairs (the pairs failing most in the window) to trace
/// their target from fixed source ports; each agent picks its requests up with its next poll
/// (GET /api/v1/traces/requests/{agent}), runs them and posts the results (POST
/// /api/v1/traces). The coordinator maps each port's hops to a spine through the DC's
/// registered devices and sums, per spine, the port's full-TTL probes and their losses: the
/// input of narrow_to_spine(). Rate limited per DC (one round per min_interval_ms). Pure core
/// (pair choice, hop mapping, aggregation) plus a small stateful book; not thread-safe (the
/// Analyzer locks around it).

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "analyze/localize.hpp"
#include "common/net.hpp"
#include "model/topology.hpp"

namespace pingmesh::analyze {

/// Knobs of the trace rounds.
struct TraceOptions {
  bool enabled = true;
  int64_t min_interval_ms = 60000;  ///< per DC, between two rounds
  uint32_t pairs = 4;               ///< pairs (distinct sources) traced per round
  uint32_t ports = 16;              ///< source ports per pair
  uint16_t first_port = 61000;      ///< ports from here up (above Linux's ephemeral range)
  uint32_t max_ttl = 8;
  uint32_t hop_attempts = 2;
  uint32_t loss_probes = 64;  ///< full-TTL probes per port
  uint32_t timeout_ms = 500;
  int64_t request_ttl_ms = 30000;  ///< a request not picked up by then is dropped
  int64_t result_ttl_ms = 180000;  ///< results narrow verdicts this long
};

/// A pair to trace.
struct TracePair {
  std::string src;         ///< source server (the agent that traces)
  std::string dst;         ///< target server
  net::IpAddress address;  ///< target address
  uint16_t dport = 0;
  uint32_t failures = 0;
};

/// The worst cross-rack pairs of DC `dc` (index into snapshot.dcs) with both ends in the
/// topology: most failures first, one pair per source, at most n. Pure.
std::vector<TracePair> pick_trace_pairs(const Snapshot& snapshot, uint32_t dc,
                                        const model::Topology& topology, uint32_t n);

/// The spine a path crossed: the single spine among the hops (addresses mapped through
/// `spines`, address text -> spine name), or nullopt when none or several appear. Pure.
std::optional<std::string> spine_of_path(
    const std::vector<std::string>& hops,
    const std::unordered_map<std::string, std::string>& spines);

/// Spine addresses of a DC's devices (canonical address text -> device name).
std::unordered_map<std::string, std::string> spine_addresses(const model::Datacenter& dc);

/// Per DC: the spines' traced probes and losses of the latest rounds, with the evidence.
struct DcTraces {
  std::vector<SpineTrace> spines;
  nlohmann::json evidence = nlohmann::json::object();  ///< pairs, ports per spine, unmapped
  int64_t updated_ms = 0;
};

class TraceCoordinator {
 public:
  explicit TraceCoordinator(TraceOptions options = {}) : options_(options) {}

  /// For each DC named in `fabric_dcs` that is due, picks pairs and queues their requests.
  /// Returns the number of requests queued.
  std::size_t plan(int64_t now_ms, const std::vector<std::string>& fabric_dcs,
                   const Snapshot& snapshot, const model::Topology& topology);
  /// True when some DC in `fabric_dcs` may start a round at now_ms (cheap; lets the caller skip
  /// building a snapshot).
  bool due(int64_t now_ms, const std::vector<std::string>& fabric_dcs) const;
  /// The queued requests of `agent` as the agent's poll body ({"requests": [...]}), removed from
  /// the queue; empty string when there are none.
  std::string take_requests(const std::string& agent, int64_t now_ms);
  /// Adds an agent's results ({"agent", "results": [...]}). Unknown or expired ids are ignored
  /// (counted in *ignored). On a malformed body returns false with *error and *field set.
  bool add_results(const nlohmann::json& body, const model::Topology* topology, int64_t now_ms,
                   std::string* error, std::string* field, std::size_t* ignored);
  /// The per-DC aggregates of results younger than result_ttl_ms.
  std::map<std::string, DcTraces> traces(int64_t now_ms) const;
  const TraceOptions& options() const { return options_; }
  /// Requests queued / picked up / answered since start.
  uint64_t queued() const { return queued_; }
  uint64_t answered() const { return answered_; }

 private:
  struct Pending {
    std::string dc;
    TracePair pair;
    std::vector<uint16_t> sports;
    int64_t created_ms = 0;
    bool taken = false;
  };
  struct PortResult {
    std::string pair;  ///< "src>dst"
    uint16_t sport = 0;
    std::optional<std::string> spine;
    uint64_t probes = 0;
    uint64_t lost = 0;
    int64_t at_ms = 0;
  };

  TraceOptions options_;
  uint64_t next_id_ = 1;
  std::map<std::string, Pending> pending_;                  ///< by request id
  std::map<std::string, int64_t> last_round_ms_;            ///< by DC
  std::map<std::string, std::vector<PortResult>> results_;  ///< by DC
  uint64_t queued_ = 0;
  uint64_t answered_ = 0;
};

}  // namespace pingmesh::analyze
