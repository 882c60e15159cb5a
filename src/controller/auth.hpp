#pragma once
/// Bearer-token access control for the API routes of every stage (controller, later collector):
/// an admin token for writes, an agent token for what agents send (heartbeats, results).

#include <optional>
#include <string>
#include <string_view>

#include "common/http.hpp"
#include "common/metrics.hpp"

namespace pingmesh::controller {

/// Who may call a route.
enum class Access {
  kPublic,  ///< anyone (reads, pinglists, health, metrics)
  kAgent,   ///< agent or admin token; anyone when no agent token is configured
  kAdmin,   ///< admin token; loopback clients only when no admin token is configured
};

/// Tokens (empty = not configured).
struct AuthOptions {
  std::string admin_token;
  std::string agent_token;
};

/// Checks `Authorization: Bearer <token>` against the configured tokens in constant time.
/// Immutable after construction; thread-safe.
class Auth {
 public:
  explicit Auth(AuthOptions options) : options_(std::move(options)) {}
  /// nullopt when the request may proceed, else the 401 or 403 answer (JSON error body;
  /// 401 carries WWW-Authenticate: Bearer).
  std::optional<http::Response> check(const http::Request& request, Access access) const;
  bool has_admin_token() const { return !options_.admin_token.empty(); }
  bool has_agent_token() const { return !options_.agent_token.empty(); }

 private:
  AuthOptions options_;
};

/// Compares two secrets in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);
/// True for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8 addresses.
bool is_loopback(std::string_view address);
/// The token of an "Authorization: Bearer <token>" header, or empty.
std::string_view bearer_token(const http::Request& request);

}  // namespace pingmesh::controller
