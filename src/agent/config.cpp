#include "agent/config.hpp"

#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "common/net.hpp"

namespace pingmesh::agent {

std::vector<std::pair<std::string, std::vector<std::string>>> read_yaml_options(std::istream& in) {
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(fmt::format("config file: {}", e.what()));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  if (root.IsNull()) return out;
  if (!root.IsMap()) throw std::runtime_error("config file: the document must be a mapping");
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    std::replace(key.begin(), key.end(), '_', '-');
    std::vector<std::string> values;
    if (kv.second.IsScalar()) {
      values.push_back(kv.second.as<std::string>());
    } else if (kv.second.IsSequence()) {
      for (const auto& v : kv.second) {
        if (!v.IsScalar()) {
          throw std::runtime_error(fmt::format("config file: '{}' must list plain values", key));
        }
        values.push_back(v.as<std::string>());
      }
    } else if (!kv.second.IsNull()) {
      throw std::runtime_error(fmt::format("config file: '{}' must be a value or a list", key));
    }
    out.emplace_back(std::move(key), std::move(values));
  }
  return out;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

std::vector<std::string> interface_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    net::IpAddress a;
    if (i->ifa_addr->sa_family == AF_INET) {
      a.family = 4;
      std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
      if (a.bytes[0] == 127) continue;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a.family = 6;
      std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      if (std::memcmp(a.bytes.data(), loopback, 16) == 0) continue;
      if (a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80) continue;  // link-local
    } else {
      continue;
    }
    std::string s = a.to_string();
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  }
  freeifaddrs(list);
  return out;
}

}  // namespace pingmesh::agent
