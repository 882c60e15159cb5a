#pragma once
/// Pure parts of the query API: which tiles cover a time range, and how a metric is read from an
/// aggregate. No I/O; the Collector feeds them the store and the live windows.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "collector/stats.hpp"

namespace pingmesh::collector {

/// Granularities of stored tiles, coarsest first: 1 day, 1 hour, 10 minutes, 1 minute.
inline constexpr std::array<int64_t, 4> kGranularities = {86400, 3600, 600, 60};

/// One piece of a cover: a stored tile (granularity, start), or a live window (granularity 0).
struct Piece {
  int64_t granularity_s = 0;
  int64_t start_s = 0;
  bool operator==(const Piece&) const = default;
};

/// What is complete where: tiles of kGranularities[i] exist for every window starting before
/// complete_until[i] (1-minute: the flush watermark; coarser: the roll-up watermarks). Windows
/// at or after the flush watermark are live (in memory).
struct Coverage {
  std::array<int64_t, 4> complete_until{};
};

/// Covers [from_s, to_s) (both multiples of 60) with the fewest pieces no coarser than
/// `max_granularity_s`: coarse tiles where they are complete and fit, finer ones at the edges,
/// live windows past the flush watermark. Pieces are ordered by start.
std::vector<Piece> cover(int64_t from_s, int64_t to_s, const Coverage& coverage,
                         int64_t max_granularity_s = 86400);

/// Metrics a query can ask for.
enum class Metric : uint8_t { kP50, kP90, kP99, kP999, kP9999, kLoss, kProbes, kMean, kMax, kMin };
/// Parses "p50", "p90", "p99", "p999", "p9999", "loss", "probes", "mean", "max", "min".
std::optional<Metric> parse_metric(std::string_view s);
std::string_view to_string(Metric m);
/// "us", "ratio" or "count".
std::string_view unit_of(Metric m);
/// True for metrics that need the sketch (quantiles, mean, min, max).
bool needs_sketch(Metric m);

/// A metric's value over an aggregate, with the number of samples behind it (latency: answered
/// probes; loss: probes counted by the loss rule; probes: probes). Missing when no sample.
struct MetricValue {
  double value = 0;
  uint64_t samples = 0;
  bool missing = true;
};
MetricValue metric_value(const Stats& s, Metric m);

/// Paper SLA thresholds: alert when loss > 0.1 % or P99 > 5 ms.
inline constexpr double kSlaMaxLoss = 1e-3;
inline constexpr double kSlaMaxP99Us = 5000;

}  // namespace pingmesh::collector
