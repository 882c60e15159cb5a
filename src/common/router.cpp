#include "common/router.hpp"

#include <algorithm>

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
  Route r{std::move(method), pattern, split_path(pattern), std::move(handler)};
  routes_.push_back(std::move(r));
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
  return out;
}

namespace {
bool match(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
           std::vector<std::string>* params) {
  if (pattern.size() != path.size()) return false;
  params->clear();
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const auto& p = pattern[i];
    if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
      if (path[i].empty()) return false;
      params->push_back(path[i]);
    } else if (p != path[i]) {
      return false;
    }
  }
  return true;
}
}  // namespace

Response Router::dispatch(Request& request) const {
  auto segments = split_path(request.path);
  std::vector<std::string> params;
  std::string allow;
  for (const auto& r : routes_) {
    if (!match(r.segments, segments, &params)) continue;
    if (r.method == request.method || (request.method == "HEAD" && r.method == "GET")) {
      request.params = std::move(params);
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
