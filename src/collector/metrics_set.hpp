#pragma once
/// The collector's Prometheus metrics (internal to the collector's .cpp files).

#include <array>
#include <memory>

#include "collector/collector.hpp"
#include "common/metrics.hpp"

namespace pingmesh::collector {

struct Collector::Metrics {
  explicit Metrics(metrics::Registry* registry);

  std::unique_ptr<metrics::Registry> own;  ///< used when no registry was given
  metrics::Registry& r;
  metrics::Counter& batches_accepted;
  metrics::Counter& batches_duplicate;
  metrics::Counter& batches_rejected;
  metrics::Counter& batches_throttled;
  metrics::Counter& batches_unauthorized;
  metrics::Counter& batches_bad;
  metrics::Counter& results;
  metrics::Counter& clamped;
  std::array<metrics::Counter*, kRejectReasons> rejected{};
  metrics::Histogram& batch_results;
  metrics::Histogram& wal_fsync_seconds;
  metrics::Histogram& store_write_seconds;
  metrics::Counter& store_errors;
  metrics::Counter& tiles_written;
  metrics::Counter& rollups;
  metrics::Counter& retention_deleted;
  metrics::Counter& replayed_records;
  metrics::Gauge& windows_open;
  metrics::Gauge& live_cells;
  metrics::Gauge& flush_lag_seconds;
  metrics::Gauge& wal_bytes;
  metrics::Gauge& wal_segments;
};

}  // namespace pingmesh::collector
