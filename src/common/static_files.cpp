#include "common/static_files.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/hash.hpp"

namespace pingmesh::http {

namespace fs = std::filesystem;

std::string content_type_for(const std::string& name) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},          {".svg", "image/svg+xml"},
      {".png", "image/png"},                  {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},               {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
  };
  auto ext = fs::path(name).extension().string();
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

StaticFiles::StaticFiles(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw std::runtime_error("web UI directory '" + root + "' does not exist (build the UI: " +
                             "scripts/build.sh, or pass --web-dir)");
  }
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    auto rel = "/" + fs::relative(entry.path(), root).generic_string();
    File f;
    f.content_type = content_type_for(rel);
    f.body = std::make_shared<const std::string>(ss.str());
    f.etag = fmt::format("\"{:016x}\"", hash::hash64(*f.body));
    files_.emplace(rel, std::move(f));
  }
  if (!files_.count("/index.html")) {
    throw std::runtime_error("web UI directory '" + root + "' has no index.html");
  }
}

std::optional<Response> StaticFiles::serve(const Request& request) const {
  std::string path = request.path == "/" ? "/index.html" : request.path;
  if (path.find("..") != std::string::npos) return std::nullopt;
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
  Response r;
  r.content_type = it->second.content_type;
  r.headers.emplace_back("etag", it->second.etag);
  // Vite names assets by content hash: they never change under one name.
  r.headers.emplace_back("cache-control", path.starts_with("/assets/")
                                              ? "public, max-age=31536000, immutable"
                                              : "no-cache");
  auto inm = request.header("if-none-match");
  if (!inm.empty() && inm.find(it->second.etag) != std::string_view::npos) {
    r.status = 304;
    return r;
  }
  r.shared_body = it->second.body;
  return r;
}

std::size_t StaticFiles::total_bytes() const {
  std::size_t n = 0;
  for (const auto& [k, f] : files_) n += f.body->size();
  return n;
}

}  // namespace pingmesh::http
