#pragma once
/// Serves pinglists from the current plan: rendered on demand, cached per plan generation, with
/// strong ETags; regenerates when the topology or the set of live servers changes. Thread-safe.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "common/metrics.hpp"
#include "model/topology.hpp"
#include "pinglist/generator.hpp"

namespace pingmesh::pinglist {

enum class Format { kXml, kJson };

/// One answer to GET /api/v1/pinglist/{server}.
struct Served {
  int status = 200;       ///< 200, 304, or 404 (unknown server)
  std::string_view etag;  ///< quoted strong ETag; points into head_lines' storage
  std::shared_ptr<const std::string> body;  ///< empty for 304/404
  /// The answer's header lines ("Name: value\r\n" each), rendered once per pinglist version and
  /// format: ETag, Cache-Control: no-cache, Vary: Accept. Empty for 404.
  std::shared_ptr<const std::string> head_lines;
  bool stopped = false;
  std::size_t entries = 0;
};

class PinglistService {
 public:
  explicit PinglistService(metrics::Registry* registry = nullptr);

  /// Installs a new topology snapshot with its liveness (alive[i] for topology->servers[i]) and
  /// regenerates at once.
  void update(std::shared_ptr<const model::Topology> topology, const Liveness& alive);
  /// Regenerates if liveness differs from the last generation's (same topology). Call every
  /// second or so. Returns true when it regenerated.
  bool tick(const Liveness& alive);
  /// Answers a pull. `if_none_match` is the raw header value (may list several tags or be "*").
  Served get(std::string_view server, Format format, std::string_view if_none_match);
  /// Entry count and stopped flag of every server's pinglist (for listings), by server name.
  struct Summary {
    std::size_t entries = 0;
    bool chosen = false;
    bool alive = false;
    bool stopped = false;
    std::string version;
  };
  Summary summary(std::string_view server) const;
  /// Number of generations so far.
  uint64_t generation() const { return generation_.load(); }
  /// The current plan (null before the first update).
  std::shared_ptr<const Plan> plan() const;

 private:
  void regenerate(std::shared_ptr<const model::Topology> topology, const Liveness& alive);
  Liveness alive_;
  mutable std::shared_mutex mu_;
  std::shared_ptr<const Plan> plan_;
  /// The ETag and header lines of one pinglist version in one format.
  struct Heads {
    std::string etag, lines;
  };
  struct Rendered {
    std::shared_ptr<const std::string> body;
    std::shared_ptr<const Heads> heads;
  };
  struct Cached {
    Rendered xml, json;
  };
  static std::shared_ptr<const Heads> make_heads(uint64_t version, Format format);
  static std::size_t bytes_of(const Rendered& r);
  std::shared_ptr<std::vector<Cached>> cache_;  // per server index of plan_
  std::size_t cached_bytes_ = 0;
  mutable std::mutex cache_mu_;
  std::mutex regen_mu_;  // one generation at a time
  std::atomic<uint64_t> generation_{0};
  metrics::Registry* registry_;
};

/// Formats a version as a quoted strong ETag; each format has its own tag.
std::string etag_of(uint64_t version, Format format);

}  // namespace pingmesh::pinglist
