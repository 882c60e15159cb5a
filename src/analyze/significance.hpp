#pragma once
/// Statistical guards for alerting on rates measured from few probes: a rate is "above" a
/// threshold only when the lower bound of its Wilson score interval is, so one lost probe in ten
/// does not fire a 0.1 % loss alert while a real 1 % loss over a few hundred probes does. Pure.

#include <cstdint>

namespace pingmesh::analyze {

/// How sure a rate must be before it counts as above a threshold.
struct Significance {
  double z = 3.09;             ///< one-sided normal quantile (3.09: 99.9 % confidence)
  uint64_t min_samples = 100;  ///< fewer trials than this never count
  uint64_t min_events = 3;     ///< fewer events (losses, failures, slow probes) never count
};

/// Lower bound of the Wilson score interval of k events in n trials at `z` (0 when n == 0).
double wilson_lower(uint64_t k, uint64_t n, double z);

/// Upper bound of the Wilson score interval of k events in n trials at `z` (1 when n == 0).
double wilson_upper(uint64_t k, uint64_t n, double z);

/// True when n >= min_samples, k >= min_events and wilson_lower(k, n, z) > rate.
bool significantly_above(uint64_t k, uint64_t n, double rate, const Significance& s);

/// The smallest event count k (of n trials) that is significantly above `rate`; n + 1 when no
/// k <= n is. Used to test a quantile: "the q-quantile is above T" is significant when at least
/// min_significant_count(n, 1 - q, s) samples exceed T.
uint64_t min_significant_count(uint64_t n, double rate, const Significance& s);

}  // namespace pingmesh::analyze
