#pragma once
/// IP addresses and CIDR prefixes as plain values (IPv4 and IPv6).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pingmesh::net {

/// An IPv4 or IPv6 address. IPv4 is stored in the first 4 bytes.
struct IpAddress {
  uint8_t family = 0;  ///< 4 or 6; 0 = unset
  std::array<uint8_t, 16> bytes{};

  /// Parses "10.0.0.1" or "fd00::1"; nullopt when malformed.
  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  bool is_v4() const { return family == 4; }
  bool is_v6() const { return family == 6; }
  auto operator<=>(const IpAddress&) const = default;
};

/// A prefix such as "10.1.0.0/24" or "fd00:1::/64".
struct Cidr {
  IpAddress network;
  int prefix_len = 0;

  /// Parses "a.b.c.d/n" or "x::/n"; host bits must be zero unless `allow_host_bits`.
  static std::optional<Cidr> parse(std::string_view text, bool allow_host_bits = false);
  bool contains(const IpAddress& a) const;
  /// True when the two prefixes share any address.
  bool overlaps(const Cidr& other) const;
  std::string to_string() const;
  auto operator<=>(const Cidr&) const = default;
};

}  // namespace pingmesh::net
