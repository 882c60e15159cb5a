#pragma once
/// Maps (method, path pattern) to handlers. Patterns are literal segments and `{name}` captures,
/// e.g. "/api/v1/dcs/{dc}/racks/{rack}". Answers 404 for unknown paths and 405 (with Allow) for
/// known paths with another method; HEAD is answered by the GET route. Matching a request does
/// not allocate (beyond filling `params` when the request's vector has no room).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/http.hpp"

namespace pingmesh::http {

class Router {
 public:
  /// Registers a route. Throws std::invalid_argument for a pattern of more than kMaxSegments
  /// segments.
  void add(std::string method, std::string pattern, Handler handler);
  /// Dispatches a request; fills request.params from the captures. Not synchronized with add().
  Response dispatch(const Request& request) const;
  /// The most segments a pattern may have; longer paths match no route.
  static constexpr std::size_t kMaxSegments = 16;
  /// All registered (method, pattern) pairs, in registration order.
  std::vector<std::pair<std::string, std::string>> routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

/// Splits a path into its segments ("/a/b/" -> {"a","b"}).
std::vector<std::string> split_path(std::string_view path);

}  // namespace pingmesh::http
