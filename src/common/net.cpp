#include "common/net.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace pingmesh::net {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string s(text);
  IpAddress a;
  if (s.find(':') != std::string::npos) {
    in6_addr v6{};
    if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
    a.family = 6;
    std::memcpy(a.bytes.data(), &v6, 16);
  } else {
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) != 1) return std::nullopt;
    a.family = 4;
    std::memcpy(a.bytes.data(), &v4, 4);
  }
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == 4) {
    inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

namespace {
bool prefix_equal(const IpAddress& a, const IpAddress& b, int len) {
  int full = len / 8, rem = len % 8;
  if (std::memcmp(a.bytes.data(), b.bytes.data(), static_cast<std::size_t>(full)) != 0) {
    return false;
  }
  if (rem == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rem));
  return (a.bytes[static_cast<std::size_t>(full)] & mask) ==
         (b.bytes[static_cast<std::size_t>(full)] & mask);
}
}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text, bool allow_host_bits) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  auto len_text = text.substr(slash + 1);
  int len = -1;
  auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc() || ptr != len_text.data() + len_text.size()) return std::nullopt;
  int max = addr->family == 4 ? 32 : 128;
  if (len < 0 || len > max) return std::nullopt;
  Cidr c{*addr, len};
  // Host bits must be zero: "10.0.0.1/24" is almost always a typo for a host or for 10.0.0.0/24.
  IpAddress masked = *addr;
  for (int bit = len; bit < max; ++bit) {
    masked.bytes[static_cast<std::size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (masked != *addr && !allow_host_bits) return std::nullopt;
  c.network = masked;
  return c;
}

bool Cidr::contains(const IpAddress& a) const {
  return a.family == network.family && prefix_equal(network, a, prefix_len);
}

bool Cidr::overlaps(const Cidr& other) const {
  if (network.family != other.network.family) return false;
  return prefix_equal(network, other.network, std::min(prefix_len, other.prefix_len));
}

std::string Cidr::to_string() const {
  return network.to_string() + "/" + std::to_string(prefix_len);
}

}  // namespace pingmesh::net
