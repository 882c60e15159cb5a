#include "model/topology_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <string_view>
#include <unordered_map>

namespace pingmesh::model {

using nlohmann::json;

namespace {

constexpr uint32_t kMaxIntervalMs = 3600000;
constexpr uint32_t kMaxInterDcServers = 1000;
constexpr uint32_t kMaxPeers = 100000;
constexpr uint32_t kMinLivenessTimeoutS = 5;
constexpr uint32_t kMaxLivenessTimeoutS = 86400;
constexpr uint8_t kMaxDscp = 63;

std::string join(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out;
  out.reserve(path.size() + 1 + key.size());
  out += path;
  out += '.';
  out += key;
  return out;
}

std::string at_index(const std::string& path, std::size_t i) {
  return fmt::format("{}[{}]", path, i);
}

/// A short rendering of an offending value for error messages.
std::string shown(const json& v) {
  std::string s = v.dump();
  constexpr std::size_t kMax = 40;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

const char* kNameRule = "must be 1..64 characters of [A-Za-z0-9._-]";

/// One JSON object being decoded: rejects unknown members up front, then reads typed members,
/// each error naming the member's full path.
class Fields {
 public:
  Fields(const json& j, const std::string& path, std::initializer_list<std::string_view> known)
      : j_(j), path_(path) {
    if (!j.is_object()) throw ValidationError(path, "must be an object, got " + shown(j));
    for (const auto& [key, value] : j.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        throw ValidationError(join(path, key), "unknown field");
      }
    }
  }

  std::string path(std::string_view key) const { return join(path_, key); }

  const json* get(std::string_view key) const {
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  void string(std::string_view key, std::string* out) const {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_string()) throw ValidationError(path(key), "must be a string, got " + shown(*v));
    *out = v->get<std::string>();
  }

  void boolean(std::string_view key, bool* out) const {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_boolean()) {
      throw ValidationError(path(key), "must be true or false, got " + shown(*v));
    }
    *out = v->get<bool>();
  }

  template <typename T>
  void integer(std::string_view key, T min, T max, T* out) const {
    const json* v = get(key);
    if (v) *out = checked_integer(*v, path(key), min, max);
  }

  template <typename T>
  void optional_integer(std::string_view key, T min, T max, std::optional<T>* out) const {
    const json* v = get(key);
    if (!v) return;
    if (v->is_null()) {
      out->reset();
    } else {
      *out = checked_integer(*v, path(key), min, max);
    }
  }

  void ratio(std::string_view key, double* out) const {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_number() || !(v->get<double>() > 0.0 && v->get<double>() <= 1.0)) {
      throw ValidationError(path(key), "must be a number in (0, 1], got " + shown(*v));
    }
    *out = v->get<double>();
  }

  template <typename T>
  static T checked_integer(const json& v, const std::string& path, T min, T max) {
    auto bad = [&] {
      return ValidationError(
          path, fmt::format("must be an integer in {}..{}, got {}", min, max, shown(v)));
    };
    if (v.is_number_unsigned()) {
      auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(max) || (min > 0 && u < static_cast<uint64_t>(min))) {
        throw bad();
      }
      return static_cast<T>(u);
    }
    if (v.is_number_integer()) {
      auto s = v.get<int64_t>();
      if (s < static_cast<int64_t>(min) ||
          (s >= 0 && static_cast<uint64_t>(s) > static_cast<uint64_t>(max))) {
        throw bad();
      }
      return static_cast<T>(s);
    }
    throw bad();
  }

 private:
  const json& j_;
  const std::string& path_;
};

const json& require_array(const json& v, const std::string& path) {
  if (!v.is_array()) throw ValidationError(path, "must be an array, got " + shown(v));
  return v;
}

void check_name(const std::string& name, const std::string& path, bool allow_wildcard) {
  if (allow_wildcard && name == "*") return;
  if (name.empty()) throw ValidationError(path, "required");
  if (!valid_name(name)) {
    throw ValidationError(
        path, fmt::format("'{}' {}{}", name, kNameRule, allow_wildcard ? " or \"*\"" : ""));
  }
}

uint16_t default_port(Protocol p) {
  switch (p) {
    case Protocol::kIcmp:
      return 0;
    case Protocol::kTcp:
      return kDefaultTcpPort;
    case Protocol::kUdp:
      return kDefaultUdpPort;
    case Protocol::kHttp:
      return kDefaultHttpPort;
  }
  return 0;
}

ProbeSpec probe_from_json(const json& j, const std::string& path) {
  Fields f(j, path, {"protocol", "port", "dscp"});
  ProbeSpec p;
  if (f.get("protocol")) {
    std::string s;
    f.string("protocol", &s);
    auto proto = parse_protocol(s);
    if (!proto) throw ValidationError(f.path("protocol"), "must be one of tcp, udp, icmp, http");
    p.protocol = *proto;
  }
  p.port = default_port(p.protocol);
  if (p.protocol == Protocol::kIcmp) {
    f.integer<uint16_t>("port", 0, 0, &p.port);
  } else {
    f.integer<uint16_t>("port", 1, 65535, &p.port);
  }
  f.optional_integer<uint8_t>("dscp", 0, kMaxDscp, &p.dscp);
  return p;
}

std::vector<ProbeSpec> probes_from_json(const json& j, const std::string& path) {
  require_array(j, path);
  std::vector<ProbeSpec> probes;
  probes.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    ProbeSpec p = probe_from_json(j[i], at_index(path, i));
    auto dup = std::find(probes.begin(), probes.end(), p);
    if (dup != probes.end()) {
      throw ValidationError(
          at_index(path, i),
          fmt::format("duplicate of {}",
                      at_index(path, static_cast<std::size_t>(dup - probes.begin()))));
    }
    probes.push_back(p);
  }
  return probes;
}

json probes_to_json(const std::vector<ProbeSpec>& probes) {
  json arr = json::array();
  for (const auto& p : probes) arr.push_back(to_json(p));
  return arr;
}

template <typename T>
void parse_enum(const Fields& f, std::string_view key, std::optional<T> (*parse)(std::string_view),
                std::string_view choices, T* out) {
  if (!f.get(key)) return;
  std::string s;
  f.string(key, &s);
  auto v = parse(s);
  if (!v) {
    throw ValidationError(f.path(key), fmt::format("must be one of {}, got \"{}\"", choices, s));
  }
  *out = *v;
}

/// Hash key of an address: family byte then the 16 address bytes.
std::string address_key(const net::IpAddress& a) {
  std::string k(17, '\0');
  k[0] = static_cast<char>(a.family);
  std::copy(a.bytes.begin(), a.bytes.end(), k.begin() + 1);
  return k;
}

std::string rack_key(std::string_view dc, std::string_view rack) {
  std::string k;
  k.reserve(dc.size() + 1 + rack.size());
  k += dc;
  k += '\0';
  k += rack;
  return k;
}

}  // namespace

json to_json(const ProbeSpec& v) {
  json j{{"protocol", to_string(v.protocol)}, {"port", v.port}};
  if (v.dscp) j["dscp"] = *v.dscp;
  return j;
}

namespace {

json devices_to_json(const std::vector<Device>& devices) {
  json out = json::array();
  for (const auto& d : devices) {
    json addresses = json::array();
    for (const auto& a : d.addresses) addresses.push_back(a.to_string());
    out.push_back(
        {{"name", d.name}, {"layer", to_string(d.layer)}, {"addresses", std::move(addresses)}});
  }
  return out;
}

std::vector<Device> devices_from_json(const json& j, const std::string& path) {
  require_array(j, path);
  std::vector<Device> out;
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    std::string dpath = at_index(path, i);
    Fields f(j[i], dpath, {"name", "layer", "addresses"});
    Device d;
    f.string("name", &d.name);
    check_name(d.name, f.path("name"), false);
    for (const auto& other : out) {
      if (other.name == d.name) {
        throw ValidationError(f.path("name"), fmt::format("duplicate device {}", d.name));
      }
    }
    parse_enum<DeviceLayer>(f, "layer", parse_device_layer, "tor, spine, border", &d.layer);
    const json* addrs = f.get("addresses");
    std::string apath = f.path("addresses");
    if (addrs == nullptr) throw ValidationError(apath, "needs at least one address");
    require_array(*addrs, apath);
    for (std::size_t k = 0; k < addrs->size(); ++k) {
      const json& a = (*addrs)[k];
      std::string ipath = at_index(apath, k);
      if (!a.is_string()) throw ValidationError(ipath, "must be a string, got " + shown(a));
      auto addr = net::IpAddress::parse(a.get_ref<const std::string&>());
      if (!addr) {
        throw ValidationError(ipath, fmt::format("'{}' is not an IPv4 or IPv6 address",
                                                 a.get_ref<const std::string&>()));
      }
      auto taken = [&](const Device& x) {
        return std::find(x.addresses.begin(), x.addresses.end(), *addr) != x.addresses.end();
      };
      if (taken(d) || std::any_of(out.begin(), out.end(), taken)) {
        throw ValidationError(ipath, fmt::format("duplicate address {}", addr->to_string()));
      }
      d.addresses.push_back(*addr);
    }
    if (d.addresses.empty()) throw ValidationError(apath, "needs at least one address");
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

json to_json(const Datacenter& v) {
  return json{{"name", v.name},
              {"mode", to_string(v.mode)},
              {"probes", probes_to_json(v.probes)},
              {"interval_ms", v.interval_ms},
              {"payload_bytes", v.payload_bytes},
              {"dscp", v.dscp},
              {"rack_ratio", v.rack_ratio},
              {"server_ratio", v.server_ratio},
              {"inter_dc_servers", v.inter_dc_servers},
              {"max_peers", v.max_peers},
              {"ipv4", v.ipv4},
              {"ipv6", v.ipv6},
              {"stopped", v.stopped},
              {"description", v.description},
              {"devices", devices_to_json(v.devices)}};
}

json to_json(const Rack& v) {
  json cidrs = json::array();
  for (const auto& c : v.cidrs) cidrs.push_back(c.to_string());
  return json{
      {"dc", v.dc}, {"name", v.name}, {"cidrs", std::move(cidrs)}, {"description", v.description}};
}

json to_json(const Server& v) {
  json addresses = json::array();
  for (const auto& a : v.addresses) addresses.push_back(a.to_string());
  return json{{"name", v.name},
              {"dc", v.dc},
              {"rack", v.rack},
              {"addresses", std::move(addresses)},
              {"hostname", v.hostname},
              {"last_seen_ms", v.last_seen_ms},
              {"agent_version", v.agent_version}};
}

json to_json(const Rule& v) {
  json j{{"name", v.name},
         {"level", to_string(v.level)},
         {"src_dc", v.src_dc},
         {"dst_dc", v.dst_dc},
         {"symmetric", v.symmetric},
         {"action", to_string(v.action)},
         {"probes", probes_to_json(v.probes)}};
  if (v.interval_ms) j["interval_ms"] = *v.interval_ms;
  if (v.payload_bytes) j["payload_bytes"] = *v.payload_bytes;
  return j;
}

json to_json(const Settings& v) {
  return json{{"stopped", v.stopped}, {"liveness_timeout_s", v.liveness_timeout_s}};
}

json to_json(const Topology& v) {
  json dcs = json::array(), racks = json::array(), servers = json::array(), rules = json::array();
  for (const auto& x : v.dcs) dcs.push_back(to_json(x));
  for (const auto& x : v.racks) racks.push_back(to_json(x));
  for (const auto& x : v.servers) servers.push_back(to_json(x));
  for (const auto& x : v.rules) rules.push_back(to_json(x));
  return json{{"settings", to_json(v.settings)},
              {"dcs", std::move(dcs)},
              {"racks", std::move(racks)},
              {"servers", std::move(servers)},
              {"rules", std::move(rules)}};
}

Datacenter dc_from_json(const json& j, const ValidationLimits& limits, const Datacenter* base,
                        const std::string& path) {
  Fields f(j, path,
           {"name", "mode", "probes", "interval_ms", "payload_bytes", "dscp", "rack_ratio",
            "server_ratio", "inter_dc_servers", "max_peers", "ipv4", "ipv6", "stopped",
            "description", "devices"});
  Datacenter dc = base ? *base : Datacenter{};
  f.string("name", &dc.name);
  check_name(dc.name, f.path("name"), false);
  parse_enum<DcMode>(f, "mode", parse_dc_mode, "rack, switch", &dc.mode);
  if (const json* p = f.get("probes")) dc.probes = probes_from_json(*p, f.path("probes"));
  if (dc.probes.empty()) throw ValidationError(f.path("probes"), "must hold at least one probe");
  f.integer<uint32_t>("interval_ms", limits.min_interval_ms, kMaxIntervalMs, &dc.interval_ms);
  f.integer<uint32_t>("payload_bytes", 0, kMaxPayloadBytes, &dc.payload_bytes);
  f.integer<uint8_t>("dscp", 0, kMaxDscp, &dc.dscp);
  f.ratio("rack_ratio", &dc.rack_ratio);
  f.ratio("server_ratio", &dc.server_ratio);
  f.integer<uint32_t>("inter_dc_servers", 0, kMaxInterDcServers, &dc.inter_dc_servers);
  f.integer<uint32_t>("max_peers", 0, kMaxPeers, &dc.max_peers);
  f.boolean("ipv4", &dc.ipv4);
  f.boolean("ipv6", &dc.ipv6);
  if (!dc.ipv4 && !dc.ipv6) {
    throw ValidationError(f.path(f.get("ipv6") ? "ipv6" : "ipv4"),
                          "at least one of ipv4 and ipv6 must be true");
  }
  f.boolean("stopped", &dc.stopped);
  f.string("description", &dc.description);
  if (const json* d = f.get("devices")) dc.devices = devices_from_json(*d, f.path("devices"));
  return dc;
}

Rack rack_from_json(const json& j, const Rack* base, const std::string& path) {
  Fields f(j, path, {"dc", "name", "cidrs", "description"});
  Rack rack = base ? *base : Rack{};
  f.string("dc", &rack.dc);
  check_name(rack.dc, f.path("dc"), false);
  f.string("name", &rack.name);
  check_name(rack.name, f.path("name"), false);
  if (const json* cidrs = f.get("cidrs")) {
    std::string cpath = f.path("cidrs");
    require_array(*cidrs, cpath);
    rack.cidrs.clear();
    rack.cidrs.reserve(cidrs->size());
    for (std::size_t i = 0; i < cidrs->size(); ++i) {
      const json& c = (*cidrs)[i];
      std::string ipath = at_index(cpath, i);
      if (!c.is_string()) throw ValidationError(ipath, "must be a string, got " + shown(c));
      const auto& text = c.get_ref<const std::string&>();
      auto cidr = net::Cidr::parse(text);
      if (!cidr) {
        if (auto loose = net::Cidr::parse(text, true)) {
          throw ValidationError(ipath, fmt::format("'{}' has host bits set; did you mean {}?", text,
                                                   loose->to_string()));
        }
        throw ValidationError(ipath, fmt::format("'{}' is not a CIDR prefix such as 10.0.1.0/24 "
                                                 "or fd00:1::/64",
                                                 text));
      }
      if (std::find(rack.cidrs.begin(), rack.cidrs.end(), *cidr) != rack.cidrs.end()) {
        throw ValidationError(ipath, fmt::format("duplicate CIDR {}", text));
      }
      rack.cidrs.push_back(*cidr);
    }
  }
  f.string("description", &rack.description);
  return rack;
}

Server server_from_json(const json& j, const Server* base, const std::string& path,
                        bool allow_state) {
  Fields f(j, path,
           {"name", "dc", "rack", "addresses", "hostname", "last_seen_ms", "agent_version"});
  Server s = base ? *base : Server{};
  f.string("name", &s.name);
  check_name(s.name, f.path("name"), false);
  f.string("dc", &s.dc);
  check_name(s.dc, f.path("dc"), false);
  f.string("rack", &s.rack);
  if (!s.rack.empty()) check_name(s.rack, f.path("rack"), false);
  if (const json* addrs = f.get("addresses")) {
    std::string apath = f.path("addresses");
    require_array(*addrs, apath);
    s.addresses.clear();
    s.addresses.reserve(addrs->size());
    for (std::size_t i = 0; i < addrs->size(); ++i) {
      const json& a = (*addrs)[i];
      std::string ipath = at_index(apath, i);
      if (!a.is_string()) throw ValidationError(ipath, "must be a string, got " + shown(a));
      auto addr = net::IpAddress::parse(a.get_ref<const std::string&>());
      if (!addr) {
        throw ValidationError(ipath, fmt::format("'{}' is not an IPv4 or IPv6 address",
                                                 a.get_ref<const std::string&>()));
      }
      if (std::find(s.addresses.begin(), s.addresses.end(), *addr) != s.addresses.end()) {
        throw ValidationError(ipath, fmt::format("duplicate address {}", addr->to_string()));
      }
      s.addresses.push_back(*addr);
    }
  }
  if (s.addresses.empty()) throw ValidationError(f.path("addresses"), "needs at least one address");
  f.string("hostname", &s.hostname);
  for (std::string_view state : {"last_seen_ms", "agent_version"}) {
    if (!allow_state && f.get(state)) {
      throw ValidationError(f.path(state), "read-only (set by the agent's heartbeats)");
    }
  }
  f.integer<int64_t>("last_seen_ms", 0, std::numeric_limits<int64_t>::max(), &s.last_seen_ms);
  f.string("agent_version", &s.agent_version);
  return s;
}

Rule rule_from_json(const json& j, const ValidationLimits& limits, const Rule* base,
                    const std::string& path) {
  Fields f(j, path,
           {"name", "level", "src_dc", "dst_dc", "symmetric", "action", "probes", "interval_ms",
            "payload_bytes"});
  Rule r = base ? *base : Rule{};
  f.string("name", &r.name);
  check_name(r.name, f.path("name"), false);
  parse_enum<Level>(f, "level", parse_level, "intra-rack, intra-dc, inter-dc", &r.level);
  f.string("src_dc", &r.src_dc);
  check_name(r.src_dc, f.path("src_dc"), true);
  f.string("dst_dc", &r.dst_dc);
  check_name(r.dst_dc, f.path("dst_dc"), true);
  if (r.level != Level::kInterDc && r.dst_dc != "*") {
    throw ValidationError(f.path("dst_dc"),
                          fmt::format("must be \"*\" for a {} rule", to_string(r.level)));
  }
  f.boolean("symmetric", &r.symmetric);
  parse_enum<RuleAction>(f, "action", parse_rule_action, "add, replace, disable", &r.action);
  if (const json* p = f.get("probes")) r.probes = probes_from_json(*p, f.path("probes"));
  f.optional_integer<uint32_t>("interval_ms", limits.min_interval_ms, kMaxIntervalMs,
                               &r.interval_ms);
  f.optional_integer<uint32_t>("payload_bytes", 0, kMaxPayloadBytes, &r.payload_bytes);
  return r;
}

Settings settings_from_json(const json& j, const Settings* base, const std::string& path) {
  Fields f(j, path, {"stopped", "liveness_timeout_s"});
  Settings s = base ? *base : Settings{};
  f.boolean("stopped", &s.stopped);
  f.integer<uint32_t>("liveness_timeout_s", kMinLivenessTimeoutS, kMaxLivenessTimeoutS,
                      &s.liveness_timeout_s);
  return s;
}

Topology topology_from_json(const json& j, const ValidationLimits& limits, bool allow_state) {
  const std::string root;
  Fields f(j, root, {"settings", "dcs", "racks", "servers", "rules"});
  Topology t;
  if (const json* s = f.get("settings")) t.settings = settings_from_json(*s, nullptr, "settings");

  auto each = [&](std::string_view key, auto decode) {
    const json* arr = f.get(key);
    if (!arr) return;
    std::string path(key);
    require_array(*arr, path);
    for (std::size_t i = 0; i < arr->size(); ++i) decode((*arr)[i], at_index(path, i));
  };
  if (const json* a = f.get("dcs"); a && a->is_array()) t.dcs.reserve(a->size());
  each("dcs", [&](const json& v, const std::string& p) {
    t.dcs.push_back(dc_from_json(v, limits, nullptr, p));
  });
  each("racks", [&](const json& v, const std::string& p) {
    t.racks.push_back(rack_from_json(v, nullptr, p));
  });
  if (const json* a = f.get("servers"); a && a->is_array()) t.servers.reserve(a->size());
  each("servers", [&](const json& v, const std::string& p) {
    t.servers.push_back(server_from_json(v, nullptr, p, allow_state));
  });
  if (f.get("rules")) {
    each("rules", [&](const json& v, const std::string& p) {
      t.rules.push_back(rule_from_json(v, limits, nullptr, p));
    });
  } else {
    t.rules = default_rules();
  }
  validate_topology(t);
  return t;
}

void validate_topology(const Topology& t) {
  std::unordered_map<std::string_view, std::size_t> dc_index;
  dc_index.reserve(t.dcs.size());
  for (std::size_t i = 0; i < t.dcs.size(); ++i) {
    auto [it, fresh] = dc_index.emplace(t.dcs[i].name, i);
    if (!fresh) {
      throw ValidationError(
          fmt::format("dcs[{}].name", i),
          fmt::format("duplicate DC name '{}' (also dcs[{}])", t.dcs[i].name, it->second));
    }
  }

  std::unordered_map<std::string, std::size_t> rack_index;
  rack_index.reserve(t.racks.size());
  for (std::size_t i = 0; i < t.racks.size(); ++i) {
    const Rack& r = t.racks[i];
    auto dc = dc_index.find(r.dc);
    if (dc == dc_index.end()) {
      throw ValidationError(fmt::format("racks[{}].dc", i), fmt::format("unknown DC '{}'", r.dc));
    }
    auto [it, fresh] = rack_index.emplace(rack_key(r.dc, r.name), i);
    if (!fresh) {
      throw ValidationError(
          fmt::format("racks[{}].name", i),
          fmt::format("duplicate rack '{}' in DC '{}' (also racks[{}])", r.name, r.dc, it->second));
    }
    if (t.dcs[dc->second].mode == DcMode::kSwitch && r.cidrs.empty()) {
      throw ValidationError(
          fmt::format("racks[{}].cidrs", i),
          fmt::format("switch '{}' of switch-mode DC '{}' needs at least one CIDR", r.name, r.dc));
    }
  }

  // Within each switch-mode DC, sort every switch CIDR by network address: two prefixes overlap
  // only when one contains the other, and then some adjacent pair in that order overlaps too.
  struct Prefix {
    std::size_t dc, rack, cidr;
    const net::Cidr* value;
  };
  std::vector<Prefix> prefixes;
  for (std::size_t i = 0; i < t.racks.size(); ++i) {
    std::size_t dc = dc_index.at(t.racks[i].dc);
    if (t.dcs[dc].mode != DcMode::kSwitch) continue;
    for (std::size_t k = 0; k < t.racks[i].cidrs.size(); ++k) {
      prefixes.push_back({dc, i, k, &t.racks[i].cidrs[k]});
    }
  }
  std::sort(prefixes.begin(), prefixes.end(), [](const Prefix& a, const Prefix& b) {
    if (a.dc != b.dc) return a.dc < b.dc;
    if (a.value->network != b.value->network) return a.value->network < b.value->network;
    if (a.value->prefix_len != b.value->prefix_len) {
      return a.value->prefix_len < b.value->prefix_len;
    }
    return a.rack < b.rack;
  });
  for (std::size_t i = 1; i < prefixes.size(); ++i) {
    const Prefix& a = prefixes[i - 1];
    const Prefix& b = prefixes[i];
    if (a.dc != b.dc || !a.value->overlaps(*b.value)) continue;
    const Prefix& later = a.rack > b.rack || (a.rack == b.rack && a.cidr > b.cidr) ? a : b;
    const Prefix& earlier = &later == &a ? b : a;
    throw ValidationError(
        fmt::format("racks[{}].cidrs[{}]", later.rack, later.cidr),
        fmt::format("{} overlaps {} of switch '{}' (racks[{}]) in DC '{}'",
                    later.value->to_string(), earlier.value->to_string(),
                    t.racks[earlier.rack].name, earlier.rack, t.dcs[later.dc].name));
  }

  std::unordered_map<std::string_view, std::size_t> server_index;
  server_index.reserve(t.servers.size());
  std::unordered_map<std::string, std::size_t> address_owner;
  address_owner.reserve(t.servers.size() * 2);
  for (std::size_t i = 0; i < t.servers.size(); ++i) {
    const Server& s = t.servers[i];
    auto [sit, fresh] = server_index.emplace(s.name, i);
    if (!fresh) {
      throw ValidationError(
          fmt::format("servers[{}].name", i),
          fmt::format("duplicate server name '{}' (also servers[{}])", s.name, sit->second));
    }
    auto dc = dc_index.find(s.dc);
    if (dc == dc_index.end()) {
      throw ValidationError(fmt::format("servers[{}].dc", i), fmt::format("unknown DC '{}'", s.dc));
    }
    const Datacenter& d = t.dcs[dc->second];
    if (d.mode == DcMode::kRack || !s.rack.empty()) {
      auto rack = rack_index.find(rack_key(s.dc, s.rack));
      if (rack == rack_index.end()) {
        throw ValidationError(
            fmt::format("servers[{}].rack", i),
            s.rack.empty()
                ? fmt::format("required: DC '{}' is in rack mode", s.dc)
                : fmt::format("unknown {} '{}' in DC '{}'",
                              d.mode == DcMode::kRack ? "rack" : "switch", s.rack, s.dc));
      }
      if (d.mode == DcMode::kSwitch) {
        const auto& cidrs = t.racks[rack->second].cidrs;
        bool placed = std::any_of(s.addresses.begin(), s.addresses.end(), [&](const auto& a) {
          return std::any_of(cidrs.begin(), cidrs.end(),
                             [&](const net::Cidr& c) { return c.contains(a); });
        });
        if (!placed) {
          throw ValidationError(fmt::format("servers[{}].rack", i),
                                fmt::format("no address of server '{}' lies in the CIDRs of "
                                            "switch '{}'",
                                            s.name, s.rack));
        }
      }
    }
    for (std::size_t k = 0; k < s.addresses.size(); ++k) {
      auto [ait, afresh] = address_owner.emplace(address_key(s.addresses[k]), i);
      if (!afresh && ait->second != i) {
        throw ValidationError(fmt::format("servers[{}].addresses[{}]", i, k),
                              fmt::format("address {} is already used by server '{}'",
                                          s.addresses[k].to_string(), t.servers[ait->second].name));
      }
    }
  }

  std::unordered_map<std::string_view, std::size_t> rule_index;
  for (std::size_t i = 0; i < t.rules.size(); ++i) {
    const Rule& r = t.rules[i];
    auto [it, fresh] = rule_index.emplace(r.name, i);
    if (!fresh) {
      throw ValidationError(
          fmt::format("rules[{}].name", i),
          fmt::format("duplicate rule name '{}' (also rules[{}])", r.name, it->second));
    }
    auto check_dc = [&](const char* field, const std::string& dc) {
      if (dc != "*" && !dc_index.contains(dc)) {
        throw ValidationError(fmt::format("rules[{}].{}", i, field),
                              fmt::format("unknown DC '{}'", dc));
      }
    };
    check_dc("src_dc", r.src_dc);
    check_dc("dst_dc", r.dst_dc);
  }
}

}  // namespace pingmesh::model
