#pragma once
/// Serves a directory of static files (the web UI's build output) from memory: each file read
/// once at start, with its content type, a strong ETag and 304s. Paths outside the directory are
/// never served.

#include <map>
#include <memory>
#include <string>

#include "common/http.hpp"

namespace pingmesh::http {

class StaticFiles {
 public:
  /// Loads every regular file under `root` (recursively). Throws std::runtime_error naming the
  /// directory when it does not exist or holds no index.html.
  explicit StaticFiles(const std::string& root);
  /// Answers GET/HEAD for `path` ("/" = "/index.html"); nullopt when no such file.
  std::optional<Response> serve(const Request& request) const;
  std::size_t file_count() const { return files_.size(); }
  std::size_t total_bytes() const;

 private:
  struct File {
    std::string content_type;
    std::string etag;
    std::shared_ptr<const std::string> body;
  };
  std::map<std::string, File> files_;
};

/// Content type for a file name by its extension ("application/octet-stream" when unknown).
std::string content_type_for(const std::string& name);

}  // namespace pingmesh::http
