#pragma once
/// A mergeable latency sketch (DDSketch, Masson et al., VLDB 2019) with 1 % relative accuracy:
/// every quantile it returns is within 1 % of the exact quantile of the values added, and merging
/// sketches gives exactly the sketch of the union, so roll-ups lose nothing beyond that bound.
///
/// Values are RTTs in microseconds. Bucket i holds values in (gamma^(i-1), gamma^i] with
/// gamma = (1 + a) / (1 - a), a = 0.01; values below kMinValueUs count in a zero bucket (reported
/// as 0). 1 us .. 60 s spans about 900 buckets; a pair's RTTs usually fall in a few dozen.
/// Storage is inline for up to kInline samples (a pair sees ~6 probes a minute), then a dense
/// array over the occupied index range. Not thread-safe.

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace pingmesh::collector {

class Sketch {
 public:
  /// Relative accuracy guaranteed on quantiles.
  static constexpr double kRelativeAccuracy = 0.01;
  /// Values below this count as zero.
  static constexpr double kMinValueUs = 1e-3;
  /// Index range; values above the top bucket are clamped into it (far above 60 s).
  static constexpr int kMinIndex = -400;
  static constexpr int kMaxIndex = 1400;
  /// Samples kept inline before the dense array is allocated.
  static constexpr int kInline = 8;

  /// Bucket index of a value > kMinValueUs.
  static int index_of(double value_us);
  /// Values below this have their index in a table.
  static constexpr uint32_t kTableUs = 32768;
  /// index_of() for an integer value >= 1 (a table lookup below kTableUs: the ingest hot path).
  static int index_of_us(uint32_t value_us) {
    return value_us < kTableUs ? kIndexTable[value_us] : index_of(static_cast<double>(value_us));
  }
  /// The value reported for bucket `index` (within kRelativeAccuracy of all values it holds).
  static double value_of(int index);

  /// Adds one value (us). Negative values count as zero.
  void add(double value_us) { add(value_us, 1); }
  /// Adds a value `n` times.
  void add(double value_us, uint64_t n);
  /// Adds one value whose bucket index the caller computed once with index_of() (hot path: one
  /// RTT updates several aggregates). Values below kMinValueUs ignore `index`.
  void add_at(double value_us, int index) {
    ++count_;
    sum_ += value_us;
    if (value_us < min_) min_ = value_us;
    if (value_us > max_) max_ = value_us;
    if (value_us < kMinValueUs) {
      ++zero_;
    } else {
      add_index(index, 1);
    }
  }
  /// Hints the CPU to fetch the bucket `index` would increment (hot path, see Aggregator).
  void prefetch_bucket(int index) const {
    auto off = static_cast<std::size_t>(index - lo_);
    if (off < counts_.size()) __builtin_prefetch(counts_.data() + off, 1);
  }
  /// Merges another sketch into this one.
  void merge(const Sketch& other);
  /// Quantile q in [0, 1] (us), clamped to [min, max]; 0 when empty.
  double quantile(double q) const;

  uint64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  double sum() const { return sum_; }
  /// Smallest and largest value added (0 when empty).
  double min() const { return count_ ? min_ : 0; }
  double max() const { return count_ ? max_ : 0; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0; }
  void clear();

  /// Appends a compact encoding (varints; one byte when empty).
  void serialize(std::string* out) const;
  /// Decodes one encoded sketch from the front of `in` and merges it into this one (consuming
  /// it). False on malformed input (this sketch may then hold part of it).
  bool merge_encoded(std::string_view* in);
  /// Skips one encoded sketch at the front of `in`.
  static bool skip_encoded(std::string_view* in);

  bool operator==(const Sketch& other) const;

 private:
  static const int16_t* const kIndexTable;  ///< index_of(v) for v in [1, kTableUs)
  void add_index(int index, uint64_t n);
  void spill();
  void ensure(int index);

  // Ordered so add_at() touches one contiguous 57-byte run (count_ .. counts_' pointer).
  uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
  std::array<int16_t, kInline> inline_{};
  uint8_t inline_n_ = 0;          ///< samples held in inline_ (counts_ is then empty)
  int32_t lo_ = 0;                ///< index of counts_[0]
  std::vector<uint64_t> counts_;  ///< dense counts over [lo_, lo_ + size)
  uint64_t zero_ = 0;
};

}  // namespace pingmesh::collector
