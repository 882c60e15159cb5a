#include "controller/auth.hpp"

#include <algorithm>

#include "common/net.hpp"

namespace pingmesh::controller {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Every byte of the longer input is visited whatever the contents, so the time does not tell
  // how long a matching prefix is.
  std::size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

bool is_loopback(std::string_view address) {
  auto a = net::IpAddress::parse(address);
  if (!a) return false;
  if (a->is_v4()) return a->bytes[0] == 127;
  static constexpr std::array<uint8_t, 16> kV6Loopback{0, 0, 0, 0, 0, 0, 0, 0,
                                                       0, 0, 0, 0, 0, 0, 0, 1};
  if (a->bytes == kV6Loopback) return true;
  // ::ffff:127.x.y.z (an IPv4 client of a dual-stack socket)
  bool mapped =
      std::all_of(a->bytes.begin(), a->bytes.begin() + 10, [](uint8_t b) { return b == 0; }) &&
      a->bytes[10] == 0xff && a->bytes[11] == 0xff;
  return mapped && a->bytes[12] == 127;
}

std::string_view bearer_token(const http::Request& request) {
  std::string_view h = request.header("authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (h.size() <= kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(h[i])) != kScheme[i]) return {};
  }
  h.remove_prefix(kScheme.size());
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  return h;
}

std::optional<http::Response> Auth::check(const http::Request& request, Access access) const {
  if (access == Access::kPublic) return std::nullopt;
  std::string_view token = bearer_token(request);
  bool admin =
      !token.empty() && has_admin_token() && constant_time_equal(token, options_.admin_token);
  bool agent =
      !token.empty() && has_agent_token() && constant_time_equal(token, options_.agent_token);
  auto unauthorized = [](std::string_view why) {
    auto r = http::Response::error(401, why, "authorization");
    r.headers.emplace_back("www-authenticate", "Bearer");
    return r;
  };
  if (access == Access::kAgent) {
    if (!has_agent_token() || admin || agent) return std::nullopt;
    return unauthorized(token.empty() ? "missing bearer token (agent or admin token required)"
                                      : "invalid bearer token");
  }
  if (agent && !admin) {
    return http::Response::error(403, "the agent token may not change the configuration",
                                 "authorization");
  }
  if (has_admin_token()) {
    if (admin) return std::nullopt;
    return unauthorized(token.empty() ? "missing bearer token (admin token required)"
                                      : "invalid bearer token");
  }
  if (is_loopback(request.remote_addr)) return std::nullopt;
  return http::Response::error(403,
                               "no admin token is configured on the server, so changes are "
                               "accepted only from loopback clients",
                               "authorization");
}

}  // namespace pingmesh::controller
