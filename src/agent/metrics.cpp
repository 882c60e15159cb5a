#include "agent/metrics.hpp"

#include <spdlog/spdlog.h>

namespace pingmesh::agent {

const char* to_string(Limit l) {
  switch (l) {
    case Limit::kRate:
      return "rate";
    case Limit::kInflight:
      return "inflight";
    case Limit::kMinInterval:
      return "min_interval";
    case Limit::kPayload:
      return "payload";
    case Limit::kResponderConnections:
      return "responder_connections";
    case Limit::kBufferFull:
      return "buffer_full";
    case Limit::kSockets:
      return "sockets";
    case Limit::kSocketBuffer:
      return "socket_buffer";
    case Limit::kCount:
      break;
  }
  return "unknown";
}

namespace {

constexpr const char* kDropped = "pingmesh_agent_results_dropped_total";
constexpr const char* kDroppedHelp = "Results dropped instead of uploaded, by reason";

}  // namespace

AgentMetrics::AgentMetrics(metrics::Registry& r)
    : duplicates(r.counter("pingmesh_agent_duplicates_total", "Duplicate UDP/ICMP answers")),
      reordered(r.counter("pingmesh_agent_reordered_total",
                          "UDP/ICMP answers that arrived after a later sequence's")),
      stray_replies(r.counter("pingmesh_agent_stray_replies_total",
                              "Answers that matched no probe in flight (late or foreign)")),
      tcp_accepted(r.counter("pingmesh_agent_responder_tcp_accepted_total",
                             "Connections accepted by the TCP responder")),
      udp_echoed(r.counter("pingmesh_agent_responder_udp_echoed_total",
                           "Datagrams echoed by the UDP responder")),
      udp_ignored(r.counter("pingmesh_agent_responder_udp_ignored_total",
                            "Datagrams to the UDP echo port that were not pingmesh probes")),
      http_pings(
          r.counter("pingmesh_agent_responder_http_pings_total", "HTTP /ping requests answered")),
      batches_uploaded(r.counter("pingmesh_agent_upload_batches_total",
                                 "Result batches acknowledged by the collector")),
      results_uploaded(r.counter("pingmesh_agent_upload_results_total",
                                 "Results in batches acknowledged by the collector")),
      upload_attempts_failed(r.counter("pingmesh_agent_upload_failures_total",
                                       "Upload attempts that failed (each retry counts)")),
      dropped_buffer_full(r.counter(kDropped, kDroppedHelp, {{"reason", "buffer_full"}})),
      dropped_rejected(r.counter(kDropped, kDroppedHelp, {{"reason", "rejected"}})),
      dropped_retries(r.counter(kDropped, kDroppedHelp, {{"reason", "retries_exhausted"}})),
      pulls_ok(r.counter("pingmesh_agent_pinglist_pulls_total", "Pinglist pulls by result",
                         {{"result", "ok"}})),
      pulls_failed(r.counter("pingmesh_agent_pinglist_pulls_total", "Pinglist pulls by result",
                             {{"result", "failed"}})),
      pinglists_rejected(r.counter("pingmesh_agent_pinglist_rejected_total",
                                   "Malformed pinglists rejected (the last good one is kept)")),
      heartbeats_failed(r.counter("pingmesh_agent_heartbeat_failures_total",
                                  "Heartbeats the controller did not acknowledge")),
      peers(r.gauge("pingmesh_agent_peers", "Probe tasks scheduled (target x protocol x port)")),
      probing(r.gauge("pingmesh_agent_probing", "1 while the agent probes a pinglist, else 0")),
      inflight(r.gauge("pingmesh_agent_inflight_probes", "Probes in flight")),
      tcp_connections(r.gauge("pingmesh_agent_responder_tcp_connections",
                              "Open connections of the TCP responder")),
      registry_(r) {
  for (auto p : {model::Protocol::kIcmp, model::Protocol::kTcp, model::Protocol::kUdp,
                 model::Protocol::kHttp}) {
    probes_started_[static_cast<int>(p)] =
        &r.counter("pingmesh_agent_probes_started_total", "Probes started, by protocol",
                   {{"protocol", std::string(model::to_string(p))}});
    for (auto o :
         {Outcome::kOk, Outcome::kDrop, Outcome::kTimeout, Outcome::kRefused, Outcome::kError}) {
      probes_[static_cast<int>(p)][static_cast<int>(o)] = &r.counter(
          "pingmesh_agent_probes_total", "Probes by protocol and outcome",
          {{"protocol", std::string(model::to_string(p))}, {"outcome", std::string(to_string(o))}});
    }
  }
  auto bounds = metrics::exponential_buckets(25e-6, 2, 18);  // 25 us .. 3.3 s
  for (auto l : {model::Level::kIntraRack, model::Level::kIntraDc, model::Level::kInterDc}) {
    rtt_[static_cast<int>(l)] =
        &r.histogram("pingmesh_agent_rtt_seconds", "RTT of answered probes by level", bounds,
                     {{"level", std::string(model::to_string(l))}});
  }
  for (int i = 0; i < static_cast<int>(Limit::kCount); ++i) {
    limits_[i] =
        &r.counter("pingmesh_agent_limit_hits_total", "Times a safety limit held something back",
                   {{"limit", to_string(static_cast<Limit>(i))}});
  }
}

void AgentMetrics::limit_hit(Limit l, double n, const std::string& detail) {
  int i = static_cast<int>(l);
  limits_[i]->inc(n);
  if (!logged_[i].exchange(true)) {
    spdlog::warn(
        "agent: limit '{}' reached: {} (logged once; see "
        "pingmesh_agent_limit_hits_total)",
        to_string(l), detail);
  }
}

void AgentMetrics::set_pinglist_version(const std::string& version) {
  std::lock_guard lock(version_mu_);
  if (version == version_) return;
  const char* name = "pingmesh_agent_pinglist_info";
  const char* help = "The pinglist being probed (value 1 for the current version)";
  if (!version_.empty()) registry_.gauge(name, help, {{"version", version_}}).set(0);
  if (!version.empty()) registry_.gauge(name, help, {{"version", version}}).set(1);
  version_ = version;
}

}  // namespace pingmesh::agent
