#pragma once
/// A server's pinglist: whom it probes, how, and the labels its results carry. Encoded as XML
/// (the paper's format; schema in docs/PINGLIST.md) or JSON. The controller writes it, the agent
/// parses it.

#include <cstdint>
#include <string>
#include <vector>

#include "common/net.hpp"
#include "model/topology.hpp"

namespace pingmesh::model {

/// One probe target of a pinglist.
struct PinglistEntry {
  std::string target;  ///< target server name
  net::IpAddress address;
  Protocol protocol = Protocol::kTcp;
  uint16_t port = 0;  ///< 0 for ICMP
  uint32_t interval_ms = kMinIntervalMs;
  uint32_t payload_bytes = 0;
  uint8_t dscp = 0;
  Level level = Level::kIntraRack;
  std::string dst_dc;
  std::string dst_rack;
  bool operator==(const PinglistEntry&) const = default;
};

/// A whole pinglist. Entries are ordered by level, target name, address, then probe kind in the
/// order the rules give them.
struct Pinglist {
  std::string server;  ///< the probing server
  std::string dc;
  std::string rack;
  std::string version;  ///< 16 hex digits; equals the ETag (without quotes)
  bool stopped = false;  ///< kill switch: entries are empty and the agent must stop probing
  std::vector<PinglistEntry> entries;
  bool operator==(const Pinglist&) const = default;
};

/// Renders as XML (byte-identical for equal pinglists).
std::string to_xml(const Pinglist& p);
/// Renders as JSON (byte-identical for equal pinglists).
std::string to_json(const Pinglist& p);

/// Parses XML or JSON (detected by the first non-space character). On error returns false and
/// sets `error` to a message naming the element/attribute or JSON field at fault.
bool parse_pinglist(std::string_view text, Pinglist* out, std::string* error);

}  // namespace pingmesh::model
