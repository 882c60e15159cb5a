#pragma once
// Builders of result batches for the analyzer's tests: a small fabric "dc<d>-r<r>-s<s>" and
// batches of TCP results between its servers.

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "pingmesh.pb.h"

namespace pingmesh::analyze::testing {

inline std::string server_name(int dc, int rack, int server) {
  return fmt::format("dc{}-r{}-s{}", dc, rack, server);
}
inline std::string rack_name(int dc, int rack) { return fmt::format("dc{}-r{}", dc, rack); }
inline std::string dc_name(int dc) { return fmt::format("dc{}", dc); }

/// A server of the test fabric.
struct Node {
  int dc = 0, rack = 0, server = 0;
  std::string name() const { return server_name(dc, rack, server); }
};

/// One result to put in a batch.
struct Probe {
  Node dst;
  v1::Outcome outcome = v1::OK;
  uint32_t rtt_us = 250;
  int64_t timestamp_us = 0;
  v1::Protocol protocol = v1::TCP;
};

inline v1::ResultBatch make_batch(const Node& src, const std::vector<Probe>& probes) {
  v1::ResultBatch b;
  b.set_agent(src.name());
  b.set_dc(dc_name(src.dc));
  b.set_rack(rack_name(src.dc, src.rack));
  for (const auto& p : probes) {
    auto* peer = b.add_peers();
    peer->set_name(p.dst.name());
    peer->set_dc(dc_name(p.dst.dc));
    peer->set_rack(rack_name(p.dst.dc, p.dst.rack));
    auto* r = b.add_results();
    r->set_peer(static_cast<uint32_t>(b.peers_size() - 1));
    r->set_protocol(p.protocol);
    r->set_outcome(p.outcome);
    r->set_rtt_us(p.rtt_us);
    r->set_timestamp_us(p.timestamp_us);
  }
  return b;
}

/// A healthy RTT: lognormal around 250 us (P99 ~1.3 ms) with rare 2-20 ms spikes.
inline uint32_t healthy_rtt(std::mt19937_64& rng) {
  std::lognormal_distribution<double> d(std::log(250.0), 0.709);
  double v = d(rng);
  if (std::uniform_real_distribution<double>(0, 1)(rng) < 1e-4) v += 2000 + 18000 * 0.5;
  return static_cast<uint32_t>(v);
}

/// A small fabric whose servers probe their rack mates, server i of every other rack of their
/// DC and server 0 of every rack of the other DCs (when they are server 0), every 10 s, with
/// batches every 5 s; `fault` may change a probe.
struct MiniNet {
  int dcs = 2, racks = 8, servers = 10;
  std::mt19937_64 rng{7};
  std::function<void(const Node&, Probe&, int64_t)> fault;
  std::function<bool(const Node&)> silent;  ///< servers that send nothing
  bool icmp_too = false;  ///< every TCP probe is followed by an ICMP probe of the same target

  std::vector<Node> peers(const Node& s) const {
    std::vector<Node> out;
    for (int i = 0; i < servers; ++i) {
      if (i != s.server) out.push_back({s.dc, s.rack, i});
    }
    for (int r = 0; r < racks; ++r) {
      if (r != s.rack) out.push_back({s.dc, r, s.server});
    }
    if (s.server == 0) {
      for (int d = 0; d < dcs; ++d) {
        for (int r = 0; d != s.dc && r < racks; ++r) out.push_back({d, r, 0});
      }
    }
    return out;
  }

  /// Calls sink with every server's batch for (t - 5 s, t].
  template <class Sink>
  void send(int64_t t, Sink&& sink) {
    for (int d = 0; d < dcs; ++d) {
      for (int r = 0; r < racks; ++r) {
        for (int i = 0; i < servers; ++i) {
          Node src{d, r, i};
          if (silent && silent(src)) continue;
          std::vector<Probe> probes;
          auto list = peers(src);
          for (std::size_t k = 0; k < list.size(); ++k) {
            if ((k + static_cast<std::size_t>(t / 5000)) % 2 != 0) continue;  // every 10 s
            Probe p;
            p.dst = list[k];
            p.timestamp_us = (t - 2500) * 1000;
            p.rtt_us = testing::healthy_rtt(rng);
            if (p.dst.dc != src.dc) p.rtt_us += 5000;
            if (silent && silent(p.dst)) {
              p.outcome = v1::TIMEOUT;
              p.rtt_us = 0;
            }
            if (fault) fault(src, p, t);
            probes.push_back(p);
            if (icmp_too) {
              Probe q = p;
              q.protocol = v1::ICMP;
              if (fault) fault(src, q, t);
              probes.push_back(q);
            }
          }
          sink(make_batch(src, probes));
        }
      }
    }
  }
};

}  // namespace pingmesh::analyze::testing
