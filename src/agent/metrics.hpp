#pragma once
/// The agent's Prometheus metrics, resolved once so the event loop updates plain atomics.
/// Thread-safe (every member is an atomic counter, gauge or histogram).

#include <array>
#include <atomic>
#include <mutex>
#include <string>

#include "agent/result.hpp"
#include "common/metrics.hpp"
#include "model/topology.hpp"

namespace pingmesh::agent {

/// A safety limit that held something back.
enum class Limit : uint8_t {
  kRate,                  ///< global probes/s cap deferred a probe
  kInflight,              ///< in-flight cap deferred a probe
  kMinInterval,           ///< a pinglist interval below the floor was raised
  kPayload,               ///< a pinglist payload above 64 KiB was lowered
  kResponderConnections,  ///< the TCP responder refused a connection over its cap
  kBufferFull,            ///< the result buffer dropped its oldest results
  kSockets,               ///< a probe socket could not be opened (fd limit, ports)
  kSocketBuffer,          ///< a UDP/ICMP probe socket's receive queue overflowed (answers lost)
  kCount
};

/// "rate", "inflight", "min_interval", "payload", "responder_connections", "buffer_full",
/// "sockets", "socket_buffer".
const char* to_string(Limit l);

class AgentMetrics {
 public:
  explicit AgentMetrics(metrics::Registry& registry);

  metrics::Registry& registry() { return registry_; }
  /// pingmesh_agent_probes_total{protocol,outcome}
  metrics::Counter& probes(model::Protocol p, Outcome o) {
    return *probes_[static_cast<int>(p)][static_cast<int>(o)];
  }
  /// pingmesh_agent_probes_started_total{protocol}: probes sent on their way. Counted when a
  /// probe starts, probes_total when it completes, so started = completed + in flight; after a
  /// stop, started freezes at once while probes in flight still complete (and are counted).
  metrics::Counter& probes_started(model::Protocol p) {
    return *probes_started_[static_cast<int>(p)];
  }
  /// pingmesh_agent_rtt_seconds{level} (successful probes only)
  metrics::Histogram& rtt(model::Level l) { return *rtt_[static_cast<int>(l)]; }
  /// Counts `n` hits of a limit (pingmesh_agent_limit_hits_total{limit}); the first hit of each
  /// limit is logged once, with `detail`.
  void limit_hit(Limit l, double n, const std::string& detail);

  metrics::Counter& duplicates;              ///< UDP/ICMP duplicate answers
  metrics::Counter& reordered;               ///< UDP/ICMP answers after a later sequence
  metrics::Counter& stray_replies;           ///< answers matching no probe (late, foreign)
  metrics::Counter& tcp_accepted;            ///< TCP responder connections accepted
  metrics::Counter& udp_echoed;              ///< UDP echo replies sent
  metrics::Counter& udp_ignored;             ///< datagrams to the echo port that were not probes
  metrics::Counter& http_pings;              ///< HTTP /ping answers
  metrics::Counter& batches_uploaded;        ///< batches acked by the collector
  metrics::Counter& results_uploaded;        ///< results in acked batches
  metrics::Counter& upload_attempts_failed;  ///< POSTs that failed (each retry counted)
  metrics::Counter& dropped_buffer_full;     ///< results dropped: buffer full
  metrics::Counter& dropped_rejected;        ///< results dropped: collector rejected (4xx)
  metrics::Counter& dropped_retries;         ///< results dropped: retries exhausted
  metrics::Counter& pulls_ok;                ///< pinglist pulls answered 200 or 304
  metrics::Counter& pulls_failed;            ///< pinglist pulls that failed (transport, 5xx, 404)
  metrics::Counter& pinglists_rejected;      ///< malformed pinglists (last good one kept)
  metrics::Counter& heartbeats_failed;
  metrics::Gauge& peers;            ///< scheduled probe tasks
  metrics::Gauge& probing;          ///< 1 while a pinglist is being probed
  metrics::Gauge& inflight;         ///< probes in flight
  metrics::Gauge& tcp_connections;  ///< open TCP responder connections

  /// Sets pingmesh_agent_pinglist_info{version} to 1 for this version (0 for the previous one).
  void set_pinglist_version(const std::string& version);

 private:
  metrics::Registry& registry_;
  std::array<std::array<metrics::Counter*, 6>, 5> probes_{};
  std::array<metrics::Counter*, 5> probes_started_{};
  std::array<metrics::Histogram*, 4> rtt_{};
  std::array<metrics::Counter*, static_cast<int>(Limit::kCount)> limits_{};
  std::array<std::atomic<bool>, static_cast<int>(Limit::kCount)> logged_{};
  std::mutex version_mu_;
  std::string version_;
};

}  // namespace pingmesh::agent
