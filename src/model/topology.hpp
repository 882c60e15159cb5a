#pragma once
/// The topology model: datacenters, racks (or ToR switches), servers, probe rules and global
/// settings. Plain values, no I/O. Everything the controller decides is a function of a Topology
/// (plus the time, for liveness).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.hpp"

namespace pingmesh::model {

/// Probe protocol.
enum class Protocol : uint8_t { kIcmp = 1, kTcp = 2, kUdp = 3, kHttp = 4 };
/// Level of a probe in the three-level mesh.
enum class Level : uint8_t { kIntraRack = 1, kIntraDc = 2, kInterDc = 3 };
/// How servers of a DC are placed: by their address under a ToR switch's CIDRs (switch mode), or
/// by registration into named racks (rack mode).
enum class DcMode : uint8_t { kSwitch = 1, kRack = 2 };
/// What a rule does to the probes of the (level, DC or DC pair) it matches.
enum class RuleAction : uint8_t { kAdd = 1, kReplace = 2, kDisable = 3 };

std::string_view to_string(Protocol p);  ///< "icmp", "tcp", "udp", "http"
std::string_view to_string(Level l);     ///< "intra-rack", "intra-dc", "inter-dc"
std::string_view to_string(DcMode m);    ///< "switch", "rack"
std::string_view to_string(RuleAction a);  ///< "add", "replace", "disable"
std::optional<Protocol> parse_protocol(std::string_view s);
std::optional<Level> parse_level(std::string_view s);
std::optional<DcMode> parse_dc_mode(std::string_view s);
std::optional<RuleAction> parse_rule_action(std::string_view s);

/// Hard limits from the paper; the lab may lower the interval floor (ServerConfig).
inline constexpr uint32_t kMinIntervalMs = 10000;
inline constexpr uint32_t kMaxPayloadBytes = 65536;
inline constexpr uint32_t kDefaultTcpPort = 9001;   ///< agent TCP responder
inline constexpr uint32_t kDefaultUdpPort = 9001;   ///< agent UDP echo responder
inline constexpr uint32_t kDefaultHttpPort = 9002;  ///< agent HTTP /ping responder

/// One kind of probe: protocol and target port (0 for ICMP), with an optional DSCP class that
/// overrides the DC's.
struct ProbeSpec {
  Protocol protocol = Protocol::kTcp;
  uint16_t port = kDefaultTcpPort;
  std::optional<uint8_t> dscp;  ///< 0..63
  bool operator==(const ProbeSpec&) const = default;
};

/// Layer of a fabric device (a switch or router between the servers).
enum class DeviceLayer : uint8_t { kTor = 1, kSpine = 2, kBorder = 3 };
std::string_view to_string(DeviceLayer l);  ///< "tor", "spine", "border"
std::optional<DeviceLayer> parse_device_layer(std::string_view s);

/// A fabric device of a DC and the addresses it may answer from (e.g. the source of an ICMP
/// time-exceeded), so a traceroute hop maps to a device. Used to narrow fabric loss to one spine.
struct Device {
  std::string name;  ///< unique within the DC; [A-Za-z0-9._-], 1..64 chars
  DeviceLayer layer = DeviceLayer::kSpine;
  std::vector<net::IpAddress> addresses;  ///< at least one; unique within the DC
  bool operator==(const Device&) const = default;
};

/// A datacenter and its probing parameters.
struct Datacenter {
  std::string name;  ///< unique; [A-Za-z0-9._-], 1..64 chars
  DcMode mode = DcMode::kRack;
  std::vector<ProbeSpec> probes{ProbeSpec{}};  ///< default probes of every level in this DC
  uint32_t interval_ms = kMinIntervalMs;        ///< per pair and probe kind
  uint32_t payload_bytes = 0;                   ///< 0..65536
  uint8_t dscp = 0;                             ///< default DSCP class, 0..63
  double rack_ratio = 1.0;    ///< fraction (0,1] of racks/switches that take part
  double server_ratio = 1.0;  ///< fraction (0,1] of servers under each that take part
  uint32_t inter_dc_servers = 4;  ///< servers of this DC that take part in inter-DC probing
  uint32_t max_peers = 0;         ///< cap on distinct targets per server; 0 = none
  bool ipv4 = true;               ///< probe IPv4 addresses
  bool ipv6 = true;               ///< probe IPv6 addresses
  bool stopped = false;           ///< kill switch of this DC
  std::string description;
  std::vector<Device> devices;  ///< fabric devices (traceroute hop -> spine); may be empty
  bool operator==(const Datacenter&) const = default;
};

/// A rack (rack mode) or a ToR switch (switch mode; its server subnets in `cidrs`).
struct Rack {
  std::string dc;
  std::string name;  ///< unique within the DC
  std::vector<net::Cidr> cidrs;
  std::string description;
  bool operator==(const Rack&) const = default;
};

/// A server. In rack mode it is registered (API, import); in switch mode it is created by its
/// agent's first heartbeat and placed under the switch whose CIDR holds one of its addresses.
struct Server {
  std::string name;  ///< unique fleet-wide; the agent's id (its hostname by default)
  std::string dc;
  std::string rack;  ///< empty when no switch CIDR holds its address (switch mode)
  std::vector<net::IpAddress> addresses;
  std::string hostname;
  int64_t last_seen_ms = 0;  ///< last heartbeat, Unix ms; 0 = no agent seen yet
  std::string agent_version;
  bool operator==(const Server&) const = default;
};

/// A probe rule. Wildcard rules ("*") are the defaults; rules naming a DC (or a DC pair for
/// inter-DC) override them: any `disable` turns the level off there, any `replace` replaces the
/// wildcard probes by the specific rules' probes, `add` adds probes. See docs/CONFIG.md.
struct Rule {
  std::string name;  ///< unique
  Level level = Level::kIntraRack;
  std::string src_dc = "*";  ///< DC (intra levels) or source DC (inter-DC); "*" = every DC
  std::string dst_dc = "*";  ///< inter-DC only: destination DC; "*" = every DC
  bool symmetric = true;     ///< inter-DC pair rules also apply to dst_dc -> src_dc
  RuleAction action = RuleAction::kAdd;
  std::vector<ProbeSpec> probes;  ///< empty = the source DC's probes
  std::optional<uint32_t> interval_ms;    ///< overrides the source DC's interval
  std::optional<uint32_t> payload_bytes;  ///< overrides the source DC's payload size
  bool operator==(const Rule&) const = default;
};

/// Fleet-wide settings stored with the topology.
struct Settings {
  bool stopped = false;  ///< global kill switch
  uint32_t liveness_timeout_s = 90;  ///< a server silent for longer is not chosen
  bool operator==(const Settings&) const = default;
};

/// A whole topology, as stored and as imported/exported.
struct Topology {
  Settings settings;
  std::vector<Datacenter> dcs;
  std::vector<Rack> racks;
  std::vector<Server> servers;
  std::vector<Rule> rules;
};

/// The three wildcard rules a new store starts with (every level on, DC probes).
std::vector<Rule> default_rules();

/// True when `name` is a valid object name ([A-Za-z0-9._-], 1..64 chars, not "*").
bool valid_name(std::string_view name);

}  // namespace pingmesh::model
