#pragma once
// Builders of small topologies for the generator's tests and benchmarks.

#include <fmt/format.h>

#include <memory>

#include "model/topology.hpp"

namespace pingmesh::pinglist::testing {

/// dcs × racks × servers, rack mode, names "dc<d>", "dc<d>-r<r>", "dc<d>-r<r>-s<s>", IPv4
/// 10.d.r.s (and fd00:d:r::s when ipv6), all seen at last_seen_ms.
inline model::Topology make_topology(int dcs, int racks, int servers, bool ipv6 = false,
                                     int64_t last_seen_ms = 1000) {
  model::Topology t;
  t.rules = model::default_rules();
  for (int d = 0; d < dcs; ++d) {
    model::Datacenter dc;
    dc.name = fmt::format("dc{}", d);
    dc.ipv6 = true;
    t.dcs.push_back(dc);
    for (int r = 0; r < racks; ++r) {
      model::Rack rack;
      rack.dc = dc.name;
      rack.name = fmt::format("dc{}-r{}", d, r);
      t.racks.push_back(rack);
      for (int s = 0; s < servers; ++s) {
        model::Server srv;
        srv.name = fmt::format("dc{}-r{}-s{}", d, r, s);
        srv.dc = dc.name;
        srv.rack = rack.name;
        srv.addresses.push_back(*net::IpAddress::parse(
            fmt::format("10.{}.{}.{}", d % 256, r % 256, s % 256 + (r / 256) * 0)));
        if (ipv6) {
          srv.addresses.push_back(*net::IpAddress::parse(fmt::format("fd00:{:x}:{:x}::{:x}", d, r, s)));
        }
        srv.last_seen_ms = last_seen_ms;
        t.servers.push_back(srv);
      }
    }
  }
  return t;
}

}  // namespace pingmesh::pinglist::testing
