#include "analyze/significance.hpp"

#include <algorithm>
#include <cmath>

namespace pingmesh::analyze {

double wilson_lower(uint64_t k, uint64_t n, double z) {
  if (n == 0) return 0;
  double nn = static_cast<double>(n);
  double p = static_cast<double>(std::min(k, n)) / nn;
  double z2 = z * z;
  double centre = p + z2 / (2 * nn);
  double margin = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
  return std::max(0.0, (centre - margin) / (1 + z2 / nn));
}

double wilson_upper(uint64_t k, uint64_t n, double z) {
  if (n == 0) return 1;
  double nn = static_cast<double>(n);
  double p = static_cast<double>(std::min(k, n)) / nn;
  double z2 = z * z;
  double centre = p + z2 / (2 * nn);
  double margin = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
  return std::min(1.0, (centre + margin) / (1 + z2 / nn));
}

bool significantly_above(uint64_t k, uint64_t n, double rate, const Significance& s) {
  return n >= s.min_samples && k >= s.min_events && wilson_lower(k, n, s.z) > rate;
}

uint64_t min_significant_count(uint64_t n, double rate, const Significance& s) {
  if (n < s.min_samples) return n + 1;
  // wilson_lower grows with k, so the first k that passes is found by bisection.
  uint64_t lo = std::max<uint64_t>(s.min_events, 1);
  uint64_t hi = n;
  if (lo > n || !significantly_above(n, n, rate, s)) return n + 1;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (significantly_above(mid, n, rate, s)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace pingmesh::analyze
