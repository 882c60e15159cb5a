#include "model/topology.hpp"

namespace pingmesh::model {

std::string_view to_string(Protocol p) {
  switch (p) {
    case Protocol::kIcmp: return "icmp";
    case Protocol::kTcp: return "tcp";
    case Protocol::kUdp: return "udp";
    case Protocol::kHttp: return "http";
  }
  return "unknown";
}

std::string_view to_string(Level l) {
  switch (l) {
    case Level::kIntraRack: return "intra-rack";
    case Level::kIntraDc: return "intra-dc";
    case Level::kInterDc: return "inter-dc";
  }
  return "unknown";
}

std::string_view to_string(DcMode m) { return m == DcMode::kSwitch ? "switch" : "rack"; }

std::string_view to_string(RuleAction a) {
  switch (a) {
    case RuleAction::kAdd: return "add";
    case RuleAction::kReplace: return "replace";
    case RuleAction::kDisable: return "disable";
  }
  return "unknown";
}

std::optional<Protocol> parse_protocol(std::string_view s) {
  if (s == "icmp") return Protocol::kIcmp;
  if (s == "tcp") return Protocol::kTcp;
  if (s == "udp") return Protocol::kUdp;
  if (s == "http") return Protocol::kHttp;
  return std::nullopt;
}

std::optional<Level> parse_level(std::string_view s) {
  if (s == "intra-rack") return Level::kIntraRack;
  if (s == "intra-dc") return Level::kIntraDc;
  if (s == "inter-dc") return Level::kInterDc;
  return std::nullopt;
}

std::string_view to_string(DeviceLayer l) {
  switch (l) {
    case DeviceLayer::kTor:
      return "tor";
    case DeviceLayer::kSpine:
      return "spine";
    case DeviceLayer::kBorder:
      return "border";
  }
  return "unknown";
}

std::optional<DeviceLayer> parse_device_layer(std::string_view s) {
  if (s == "tor") return DeviceLayer::kTor;
  if (s == "spine") return DeviceLayer::kSpine;
  if (s == "border") return DeviceLayer::kBorder;
  return std::nullopt;
}

std::optional<DcMode> parse_dc_mode(std::string_view s) {
  if (s == "switch") return DcMode::kSwitch;
  if (s == "rack") return DcMode::kRack;
  return std::nullopt;
}

std::optional<RuleAction> parse_rule_action(std::string_view s) {
  if (s == "add") return RuleAction::kAdd;
  if (s == "replace") return RuleAction::kReplace;
  if (s == "disable") return RuleAction::kDisable;
  return std::nullopt;
}

std::vector<Rule> default_rules() {
  std::vector<Rule> rules(3);
  rules[0].name = "default-intra-rack";
  rules[0].level = Level::kIntraRack;
  rules[1].name = "default-intra-dc";
  rules[1].level = Level::kIntraDc;
  rules[2].name = "default-inter-dc";
  rules[2].level = Level::kInterDc;
  return rules;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace pingmesh::model
