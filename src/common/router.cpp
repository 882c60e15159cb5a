#include "common/router.hpp"

#include <array>
#include <stdexcept>

namespace pingmesh::http {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

void Router::add(std::string method, std::string pattern, Handler handler) {
  auto segments = split_path(pattern);
  if (segments.size() > kMaxSegments) {
    throw std::invalid_argument("route pattern '" + pattern + "' has more than " +
                                std::to_string(kMaxSegments) + " segments");
  }
  Route r{std::move(method), std::move(pattern), std::move(segments), std::move(handler)};
  routes_.push_back(std::move(r));
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
  return out;
}

namespace {

/// A path split into segments without copying them; `count` > kMaxSegments marks a path longer
/// than any pattern.
struct PathSegments {
  std::array<std::string_view, Router::kMaxSegments> at;
  std::size_t count = 0;
};

PathSegments split_view(std::string_view path) {
  PathSegments out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) {
      if (out.count == Router::kMaxSegments) {
        ++out.count;
        break;
      }
      out.at[out.count++] = path.substr(i, j - i);
    }
    i = j;
  }
  return out;
}

bool is_capture(const std::string& segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

bool matches(const std::vector<std::string>& pattern, const PathSegments& path) {
  if (pattern.size() != path.count) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (!is_capture(pattern[i]) && pattern[i] != path.at[i]) return false;
  }
  return true;
}

}  // namespace

Response Router::dispatch(const Request& request) const {
  const PathSegments segments = split_view(request.path);
  std::string allow;
  for (const auto& r : routes_) {
    if (!matches(r.segments, segments)) continue;
    if (r.method == request.method || (request.method == "HEAD" && r.method == "GET")) {
      std::size_t n = 0;
      for (std::size_t i = 0; i < r.segments.size(); ++i) {
        if (!is_capture(r.segments[i])) continue;
        if (n == request.params.size()) request.params.emplace_back();
        request.params[n++].assign(segments.at[i]);
      }
      request.params.resize(n);
      return r.handler(request);
    }
    if (allow.find(r.method) == std::string::npos) {
      if (!allow.empty()) allow += ", ";
      allow += r.method;
    }
  }
  if (!allow.empty()) {
    auto resp = Response::error(405, "method " + request.method + " not allowed on this path");
    resp.headers.emplace_back("allow", allow);
    return resp;
  }
  return Response::error(404, "no such path: " + request.path);
}

}  // namespace pingmesh::http
