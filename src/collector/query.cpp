#include "collector/query.hpp"

#include <algorithm>

namespace pingmesh::collector {

namespace {

constexpr std::string_view kMetricNames[] = {"p50",  "p90",    "p99",  "p999", "p9999",
                                             "loss", "probes", "mean", "max",  "min"};

void cover_at(int64_t from, int64_t to, std::size_t gi, const Coverage& c,
              std::vector<Piece>* out) {
  int64_t g = kGranularities[gi];
  if (g == 60) {
    for (int64_t t = from; t < to; t += 60) {
      out->push_back({t < c.complete_until[gi] ? 60 : 0, t});
    }
    return;
  }
  int64_t t = from;
  while (t < to) {
    if (t % g == 0 && t + g <= to && t + g <= c.complete_until[gi]) {
      out->push_back({g, t});
      t += g;
      continue;
    }
    int64_t next = std::min(to, (t / g + 1) * g);
    cover_at(t, next, gi + 1, c, out);
    t = next;
  }
}

}  // namespace

std::vector<Piece> cover(int64_t from_s, int64_t to_s, const Coverage& coverage,
                         int64_t max_granularity_s) {
  std::vector<Piece> out;
  std::size_t gi = 0;
  while (gi + 1 < kGranularities.size() && kGranularities[gi] > max_granularity_s) ++gi;
  if (from_s < to_s) cover_at(from_s, to_s, gi, coverage, &out);
  return out;
}

std::optional<Metric> parse_metric(std::string_view s) {
  for (std::size_t i = 0; i < std::size(kMetricNames); ++i) {
    if (kMetricNames[i] == s) return static_cast<Metric>(i);
  }
  return std::nullopt;
}

std::string_view to_string(Metric m) { return kMetricNames[static_cast<int>(m)]; }

std::string_view unit_of(Metric m) {
  if (m == Metric::kLoss) return "ratio";
  if (m == Metric::kProbes) return "count";
  return "us";
}

bool needs_sketch(Metric m) { return m != Metric::kLoss && m != Metric::kProbes; }

MetricValue metric_value(const Stats& s, Metric m) {
  MetricValue v;
  switch (m) {
    case Metric::kLoss:
      v.samples = s.loss_base;
      if (auto l = s.loss()) {
        v.value = *l;
        v.missing = false;
      }
      return v;
    case Metric::kProbes:
      v.samples = s.probes;
      v.value = static_cast<double>(s.probes);
      v.missing = s.probes == 0;
      return v;
    default:
      break;
  }
  v.samples = s.rtt.count();
  v.missing = v.samples == 0;
  if (v.missing) return v;
  switch (m) {
    case Metric::kP50: v.value = s.rtt.quantile(0.5); break;
    case Metric::kP90: v.value = s.rtt.quantile(0.9); break;
    case Metric::kP99: v.value = s.rtt.quantile(0.99); break;
    case Metric::kP999: v.value = s.rtt.quantile(0.999); break;
    case Metric::kP9999: v.value = s.rtt.quantile(0.9999); break;
    case Metric::kMean: v.value = s.rtt.mean(); break;
    case Metric::kMax: v.value = s.rtt.max(); break;
    case Metric::kMin: v.value = s.rtt.min(); break;
    default: break;
  }
  return v;
}

}  // namespace pingmesh::collector
