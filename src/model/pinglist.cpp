#include "model/pinglist.hpp"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

namespace pingmesh::model {

namespace {

void xml_escape(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
}

template <typename T>
bool parse_uint(std::string_view s, T max, T* out) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  *out = static_cast<T>(v);
  return true;
}

}  // namespace

std::string to_xml(const Pinglist& p) {
  std::string out;
  out.reserve(160 + p.entries.size() * 170);
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Pinglist format=\"1\" server=\"";
  xml_escape(out, p.server);
  out += "\" dc=\"";
  xml_escape(out, p.dc);
  out += "\" rack=\"";
  xml_escape(out, p.rack);
  out += "\" version=\"";
  out += p.version;
  out += p.stopped ? "\" stopped=\"true\">\n" : "\" stopped=\"false\">\n";
  for (const auto& e : p.entries) {
    out += "  <Peer name=\"";
    xml_escape(out, e.target);
    out += "\" addr=\"";
    out += e.address.to_string();
    fmt::format_to(std::back_inserter(out),
                   "\" proto=\"{}\" port=\"{}\" interval_ms=\"{}\" payload=\"{}\" dscp=\"{}\" "
                   "level=\"{}\" dc=\"",
                   to_string(e.protocol), e.port, e.interval_ms, e.payload_bytes, e.dscp,
                   to_string(e.level));
    xml_escape(out, e.dst_dc);
    out += "\" rack=\"";
    xml_escape(out, e.dst_rack);
    out += "\"/>\n";
  }
  out += "</Pinglist>\n";
  return out;
}

std::string to_json(const Pinglist& p) {
  nlohmann::ordered_json j;
  j["format"] = 1;
  j["server"] = p.server;
  j["dc"] = p.dc;
  j["rack"] = p.rack;
  j["version"] = p.version;
  j["stopped"] = p.stopped;
  auto& arr = j["peers"] = nlohmann::ordered_json::array();
  for (const auto& e : p.entries) {
    nlohmann::ordered_json o;
    o["name"] = e.target;
    o["addr"] = e.address.to_string();
    o["proto"] = to_string(e.protocol);
    o["port"] = e.port;
    o["interval_ms"] = e.interval_ms;
    o["payload"] = e.payload_bytes;
    o["dscp"] = e.dscp;
    o["level"] = to_string(e.level);
    o["dc"] = e.dst_dc;
    o["rack"] = e.dst_rack;
    arr.push_back(std::move(o));
  }
  return j.dump();
}

namespace {

/// Reads one peer's fields through a getter (XML attribute or JSON member), validating each.
template <typename Get>
bool parse_peer(Get get, PinglistEntry* e, std::string* error, const std::string& where) {
  auto fail = [&](std::string_view field, std::string_view why) {
    *error = fmt::format("{}: attribute '{}' {}", where, field, why);
    return false;
  };
  std::string v;
  if (!get("name", &v) || !valid_name(v)) return fail("name", "missing or not a valid name");
  e->target = v;
  if (!get("addr", &v)) return fail("addr", "missing");
  auto a = net::IpAddress::parse(v);
  if (!a) return fail("addr", "is not an IP address");
  e->address = *a;
  if (!get("proto", &v)) return fail("proto", "missing");
  auto proto = parse_protocol(v);
  if (!proto) return fail("proto", "must be icmp, tcp, udp or http");
  e->protocol = *proto;
  if (!get("port", &v) || !parse_uint<uint16_t>(v, 65535, &e->port)) {
    return fail("port", "missing or not in 0..65535");
  }
  if (e->protocol != Protocol::kIcmp && e->port == 0) return fail("port", "must not be 0");
  if (!get("interval_ms", &v) || !parse_uint<uint32_t>(v, 86400000u, &e->interval_ms) ||
      e->interval_ms == 0) {
    return fail("interval_ms", "missing or not in 1..86400000");
  }
  if (!get("payload", &v) || !parse_uint<uint32_t>(v, kMaxPayloadBytes, &e->payload_bytes)) {
    return fail("payload", "missing or above 65536");
  }
  if (!get("dscp", &v) || !parse_uint<uint8_t>(v, 63, &e->dscp)) {
    return fail("dscp", "missing or not in 0..63");
  }
  if (!get("level", &v)) return fail("level", "missing");
  auto level = parse_level(v);
  if (!level) return fail("level", "must be intra-rack, intra-dc or inter-dc");
  e->level = *level;
  if (!get("dc", &e->dst_dc)) return fail("dc", "missing");
  if (!get("rack", &e->dst_rack)) e->dst_rack.clear();
  return true;
}

bool parse_xml(std::string_view text, Pinglist* out, std::string* error) {
  pugi::xml_document doc;
  auto res = doc.load_buffer(text.data(), text.size());
  if (!res) {
    *error = fmt::format("XML parse error at offset {}: {}", res.offset, res.description());
    return false;
  }
  auto root = doc.child("Pinglist");
  if (!root) {
    *error = "XML: root element <Pinglist> missing";
    return false;
  }
  Pinglist p;
  p.server = root.attribute("server").as_string();
  p.dc = root.attribute("dc").as_string();
  p.rack = root.attribute("rack").as_string();
  p.version = root.attribute("version").as_string();
  std::string stopped = root.attribute("stopped").as_string("false");
  if (stopped != "true" && stopped != "false") {
    *error = "XML: <Pinglist> attribute 'stopped' must be true or false";
    return false;
  }
  p.stopped = stopped == "true";
  if (p.server.empty()) {
    *error = "XML: <Pinglist> attribute 'server' missing";
    return false;
  }
  int index = 0;
  for (auto peer : root.children("Peer")) {
    PinglistEntry e;
    auto get = [&peer](const char* name, std::string* v) {
      auto attr = peer.attribute(name);
      if (!attr) return false;
      *v = attr.as_string();
      return true;
    };
    if (!parse_peer(get, &e, error, fmt::format("XML: <Peer> #{}", index))) return false;
    p.entries.push_back(std::move(e));
    ++index;
  }
  *out = std::move(p);
  return true;
}

bool parse_json(std::string_view text, Pinglist* out, std::string* error) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = "JSON: not a valid JSON object";
    return false;
  }
  Pinglist p;
  auto str = [&j](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  p.server = str("server");
  p.dc = str("dc");
  p.rack = str("rack");
  p.version = str("version");
  auto st = j.find("stopped");
  if (st != j.end() && !st->is_boolean()) {
    *error = "JSON: field 'stopped' must be a boolean";
    return false;
  }
  p.stopped = st != j.end() && st->get<bool>();
  if (p.server.empty()) {
    *error = "JSON: field 'server' missing";
    return false;
  }
  auto peers = j.find("peers");
  if (peers != j.end() && !peers->is_array()) {
    *error = "JSON: field 'peers' must be an array";
    return false;
  }
  if (peers != j.end()) {
    int index = 0;
    for (const auto& o : *peers) {
      if (!o.is_object()) {
        *error = fmt::format("JSON: peers[{}] is not an object", index);
        return false;
      }
      auto get = [&o](const char* name, std::string* v) {
        auto it = o.find(name);
        if (it == o.end()) return false;
        if (it->is_string()) {
          *v = it->get<std::string>();
        } else if (it->is_number_unsigned()) {
          *v = std::to_string(it->get<uint64_t>());
        } else {
          return false;
        }
        return true;
      };
      PinglistEntry e;
      if (!parse_peer(get, &e, error, fmt::format("JSON: peers[{}]", index))) return false;
      p.entries.push_back(std::move(e));
      ++index;
    }
  }
  *out = std::move(p);
  return true;
}

}  // namespace

bool parse_pinglist(std::string_view text, Pinglist* out, std::string* error) {
  std::size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
    ++i;
  if (i < text.size() && text[i] == '{') return parse_json(text, out, error);
  if (i < text.size() && text[i] == '<') return parse_xml(text, out, error);
  *error = "pinglist is neither XML nor JSON";
  return false;
}

}  // namespace pingmesh::model
