#pragma once
/// The collector: ingest of result batches with a durable acknowledgement, windowed aggregation,
/// storage with roll-ups and retention, and the JSON query API. See docs/COLLECTOR.md.
///
/// Data path of POST /api/v1/results: decode (snappy/gzip/identity protobuf, or JSON) ->
/// deduplicate by (agent, batch_id) -> aggregate into the live windows -> append the body to the
/// write-ahead log (group commit, fdatasync) -> 200. A background tick closes windows after
/// their grace period, writes them to the store as tiles (one transaction with the watermark),
/// deletes WAL segments that are then redundant, rolls tiles up (1 min -> 10 min -> 1 h -> 1 day)
/// and deletes expired tiles in small batches.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "collector/aggregator.hpp"
#include "collector/names.hpp"
#include "collector/query.hpp"
#include "collector/store.hpp"
#include "collector/wal.hpp"
#include "common/http.hpp"
#include "common/metrics.hpp"
#include "common/router.hpp"
#include "pingmesh.pb.h"

namespace pingmesh::collector {

/// How long stored tiles are kept, per granularity (seconds).
struct RetentionOptions {
  int64_t minute_s = 2 * 86400;
  int64_t ten_minutes_s = 14 * 86400;
  int64_t hour_s = 90 * 86400;
  int64_t day_s = 730 * 86400;
  /// Retention of a granularity (60, 600, 3600, 86400).
  int64_t of(int64_t granularity_s) const;
};

struct CollectorOptions {
  std::string data_dir;     ///< holds wal/ and collector.db; created if missing
  std::string agent_token;  ///< bearer token agents must send; empty = accept all (warned once)
  AggregatorOptions windows;
  RetentionOptions retention;
  int64_t dedup_window_s = 900;             ///< retried batches are recognised this long
  std::size_t max_inflight_bytes = 256 << 20;  ///< bodies being ingested; above -> 429
  std::size_t max_live_cells = 20'000'000;     ///< aggregates in open windows; above -> 429
  std::size_t max_flush_backlog = 10;          ///< closed windows not yet stored; above -> 429
  std::size_t max_batch_results = 1'000'000;   ///< larger batches -> 413
  bool wal_sync = true;                        ///< fdatasync before acknowledging
  std::size_t wal_segment_bytes = 64 << 20;
  int64_t tick_ms = 1000;                      ///< background work period
  std::size_t retention_batch = 500;           ///< tiles deleted per statement
  /// Unix microseconds; the system clock when unset (tests inject a clock).
  std::function<int64_t()> clock_us;
  /// Called with every batch once it is durable (after the WAL append), on the ingesting thread;
  /// the analyzer observes results through it. Must be cheap and thread-safe.
  std::function<void(const v1::ResultBatch& batch, int64_t now_us)> on_accepted;
  /// Called on the background thread with each closed window once it is stored (oldest first),
  /// and the dictionary its ids refer to; the remote-write exporter hooks in here. The window is
  /// no longer changed. Must not block.
  std::function<void(std::shared_ptr<const Window> window, const Names& names)> on_window_stored;
};

/// Outcome of one ingest call.
struct IngestStatus {
  int http_status = 200;  ///< 200, 400, 401, 403, 413, 429, 503
  IngestCounts counts;
  bool duplicate = false;   ///< the batch was seen before and not counted again
  std::string error;        ///< for non-200
  int retry_after_s = 0;    ///< for 429
};

class Collector {
 public:
  /// Opens (or creates) the data directory, loads the names dictionary and replays the WAL.
  /// `known_server` returns false for source names the controller does not know (their batches
  /// are rejected with 403 and counted); null accepts every source. Metrics are registered on
  /// `registry` (which must outlive the collector). Throws on unusable data directories.
  Collector(CollectorOptions options, metrics::Registry* registry,
            std::function<bool(std::string_view)> known_server);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  /// POST /api/v1/results; GET /api/v1/matrix, /api/v1/series, /api/v1/top, /api/v1/sla.
  void register_routes(http::Router& router);
  /// Starts the background thread (tick() every tick_ms). Idempotent.
  void start();
  /// Stops the background thread after a last tick. Open windows stay in the WAL, to be replayed
  /// at the next start. Idempotent.
  void stop();
  /// One round of background work: close windows, store them, release WAL segments, roll up,
  /// apply retention. Thread-safe; tests call it directly with an injected clock.
  void tick();

  /// Ingests a decoded batch (in-process; benchmarks): validation, dedup, aggregation, WAL.
  IngestStatus ingest(const v1::ResultBatch& batch);
  /// Ingests an encoded body, as POST /api/v1/results does after authentication.
  IngestStatus ingest_body(std::string_view body, BodyFormat format);

  /// False once the WAL failed (the collector then refuses batches).
  bool healthy() const;
  /// Start of the oldest window not yet in the store.
  int64_t flushed_until() const { return flushed_until_.load(); }
  /// Number of WAL records replayed at start-up.
  uint64_t replayed() const { return replayed_; }

  /// Query handlers (also reachable through register_routes).
  http::Response handle_results(const http::Request& request);
  http::Response handle_matrix(const http::Request& request);
  http::Response handle_series(const http::Request& request);
  http::Response handle_top(const http::Request& request);
  http::Response handle_sla(const http::Request& request);

 private:
  struct Metrics;
  /// Where a decoded tile cell goes: the Stats to merge into, or null to skip it.
  using Target = std::function<Stats*(const Key& key, int64_t start_s)>;

  int64_t now_us() const;
  /// `message` returns the batch as a protobuf message (parsed on demand: only on_accepted
  /// needs it).
  IngestStatus ingest_decoded(const BatchView& batch,
                              const std::function<const v1::ResultBatch&()>& message,
                              std::string_view payload, BodyFormat format);
  bool dedup_insert(const BatchView& batch, int64_t now_us);
  void dedup_erase(const BatchView& batch);
  void flush();
  void rollup();
  void apply_retention();
  Coverage coverage() const;
  /// Merges the aggregates of (level, scope) over [from_s, to_s) into the Stats chosen by
  /// `target`, from the store and the live windows. `sketch` = false skips sketch decoding.
  /// `lockstep` merges all the tiles of a scope cell by cell (queries filling many targets from
  /// many tiles: each target stays in cache); otherwise tiles are decoded one after the other,
  /// and, given `last_key`, only up to that key (tiles are sorted by key).
  void collect(Level level, const std::vector<uint32_t>& scopes, int64_t from_s, int64_t to_s,
               int64_t max_granularity_s, bool sketch, const Target& target,
               bool lockstep = false, const Key* last_key = nullptr);
  /// Merges tiles (start, data) cell by cell in key order: merge_cell(key, start, stats) per cell.
  static void merge_lockstep(
      const std::vector<std::pair<int64_t, OwnedBytes>>& tiles,
      const std::function<bool(const Key&, int64_t, std::string_view*)>& merge_cell, Level level,
      uint32_t scope);

  CollectorOptions options_;
  std::function<bool(std::string_view)> known_server_;
  std::unique_ptr<Metrics> metrics_;
  Names names_;
  std::unique_ptr<AggregateStore> store_;
  std::unique_ptr<Wal> wal_;

  mutable std::mutex agg_mu_;  ///< guards aggregator_ and flushing_
  Aggregator aggregator_;
  std::deque<std::shared_ptr<Window>> flushing_;  ///< closed, not yet stored (oldest first)

  std::mutex tick_mu_;  ///< one tick at a time
  std::atomic<int64_t> flushed_until_{0};
  std::array<std::atomic<int64_t>, 4> complete_until_{};  ///< per kGranularities
  std::vector<NameRow> unsaved_names_;

  std::mutex dedup_mu_;
  std::unordered_map<std::string, int64_t> dedup_;  ///< agent\0batch_id -> seen at (us)
  std::deque<std::pair<int64_t, std::string>> dedup_order_;

  std::atomic<std::size_t> inflight_bytes_{0};
  std::atomic<bool> warned_no_token_{false};
  uint64_t replayed_ = 0;

  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

/// The OpenAPI 3 fragment (paths and tags) documenting register_routes()' routes.
std::string_view openapi_fragment();

/// A decoded body with the buffers it points into, reusable from batch to batch: protobuf bodies
/// are decompressed once and read by parse_batch() (no protobuf objects); JSON bodies go through
/// protobuf's JSON parser. message() parses the protobuf message only when asked.
struct DecodedBatch {
  BatchView view;
  /// False with a message on malformed input.
  bool decode(std::string_view body, BodyFormat format, std::string* error);
  /// The batch as a protobuf message (valid until the next decode()).
  const v1::ResultBatch& message();

 private:
  std::string buf;
  std::string_view raw;
  std::unique_ptr<google::protobuf::Arena> arena = std::make_unique<google::protobuf::Arena>();
  const v1::ResultBatch* proto = nullptr;
};

/// Decodes a body into `batch` (which should live on an arena for speed). False with a message
/// on malformed input.
bool decode_batch(std::string_view body, BodyFormat format, v1::ResultBatch* batch,
                  std::string* error);
/// Maps Content-Type and Content-Encoding headers to a format; nullopt (with a message) when
/// unsupported.
std::optional<BodyFormat> body_format(std::string_view content_type,
                                      std::string_view content_encoding, std::string* error);

}  // namespace pingmesh::collector
