#include "collector/sketch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "collector/varint.hpp"

namespace pingmesh::collector {

namespace {

const double kGamma = (1 + Sketch::kRelativeAccuracy) / (1 - Sketch::kRelativeAccuracy);
const double kLogGamma = std::log(kGamma);
const double kInvLogGamma = 1 / kLogGamma;
const double kValueFactor = 2 / (1 + kGamma);

const int16_t* make_index_table() {
  static int16_t table[Sketch::kTableUs];
  table[0] = 0;
  for (uint32_t v = 1; v < Sketch::kTableUs; ++v) {
    table[v] = static_cast<int16_t>(Sketch::index_of(static_cast<double>(v)));
  }
  return table;
}

/// Layout value of fixed-width dense buckets (see Sketch::serialize).
constexpr uint64_t kFixedLayout = 1;

/// Reads the header of fixed-width buckets and consumes them; `*src` points at the counts.
bool read_fixed(std::string_view* in, uint64_t* width, uint64_t* n, int64_t* lo,
                const uint8_t** src) {
  uint64_t first = 0;
  if (!varint::get(in, width) || !varint::get(in, n) || !varint::get(in, &first)) return false;
  if ((*width != 1 && *width != 2 && *width != 4 && *width != 8) || *n == 0 ||
      *n > static_cast<uint64_t>(Sketch::kMaxIndex - Sketch::kMinIndex + 1)) {
    return false;
  }
  *lo = varint::unzigzag(first);
  if (*lo < Sketch::kMinIndex || *lo + static_cast<int64_t>(*n) - 1 > Sketch::kMaxIndex) {
    return false;
  }
  uint64_t bytes = *n * *width;
  if (in->size() < bytes) return false;
  *src = reinterpret_cast<const uint8_t*>(in->data());
  in->remove_prefix(bytes);
  return true;
}

template <typename T>
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize")))  // -O2 leaves this loop scalar
#endif
void add_fixed(uint64_t* __restrict dst, const uint8_t* __restrict src, uint64_t n) {
  for (uint64_t k = 0; k < n; ++k) {
    T c;
    std::memcpy(&c, src + k * sizeof(T), sizeof(T));
    dst[k] += c;
  }
}

}  // namespace

const int16_t* const Sketch::kIndexTable = make_index_table();

int Sketch::index_of(double value_us) {
  double i = std::ceil(std::log(value_us) * kInvLogGamma);
  if (i < kMinIndex) return kMinIndex;
  if (i > kMaxIndex) return kMaxIndex;
  return static_cast<int>(i);
}

double Sketch::value_of(int index) {
  return std::exp(static_cast<double>(index) * kLogGamma) * kValueFactor;
}

void Sketch::add(double value_us, uint64_t n) {
  if (n == 0) return;
  if (!(value_us > 0)) value_us = 0;  // also maps NaN to 0
  count_ += n;
  sum_ += value_us * static_cast<double>(n);
  min_ = std::min(min_, value_us);
  max_ = std::max(max_, value_us);
  if (value_us < kMinValueUs) {
    zero_ += n;
  } else {
    add_index(index_of(value_us), n);
  }
}

void Sketch::add_index(int index, uint64_t n) {
  if (counts_.empty()) {
    if (n == 1 && inline_n_ < kInline) {
      inline_[inline_n_++] = static_cast<int16_t>(index);
      return;
    }
    spill();
  }
  ensure(index);
  counts_[static_cast<std::size_t>(index - lo_)] += n;
}

void Sketch::spill() {
  if (inline_n_ == 0) return;
  auto [lo, hi] = std::minmax_element(inline_.begin(), inline_.begin() + inline_n_);
  lo_ = *lo;
  counts_.assign(static_cast<std::size_t>(*hi - *lo + 1), 0);
  for (int k = 0; k < inline_n_; ++k) ++counts_[static_cast<std::size_t>(inline_[k] - lo_)];
  inline_n_ = 0;
}

void Sketch::ensure(int index) {
  if (counts_.empty()) {
    lo_ = index;
    counts_.assign(1, 0);
    return;
  }
  int hi = lo_ + static_cast<int>(counts_.size()) - 1;
  if (index >= lo_ && index <= hi) return;
  // Grow with slack in the direction of growth so a drifting range reallocates rarely.
  int slack = std::max(8, static_cast<int>(counts_.size()) / 4);
  if (index < lo_) {
    int new_lo = std::max(kMinIndex, index - slack);
    counts_.insert(counts_.begin(), static_cast<std::size_t>(lo_ - new_lo), 0);
    lo_ = new_lo;
  } else {
    int new_hi = std::min(kMaxIndex, index + slack);
    counts_.resize(static_cast<std::size_t>(new_hi - lo_ + 1), 0);
  }
}

void Sketch::merge(const Sketch& other) {
  if (other.count_ == 0) return;
  count_ += other.count_;
  sum_ += other.sum_;
  zero_ += other.zero_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  for (int k = 0; k < other.inline_n_; ++k) add_index(other.inline_[k], 1);
  if (other.counts_.empty()) return;
  if (counts_.empty()) spill();
  ensure(other.lo_);
  ensure(other.lo_ + static_cast<int>(other.counts_.size()) - 1);
  uint64_t* dst = counts_.data() + (other.lo_ - lo_);
  const uint64_t* src = other.counts_.data();
  for (std::size_t i = 0, n = other.counts_.size(); i < n; ++i) dst[i] += src[i];
}

double Sketch::quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  double rank = q * static_cast<double>(count_ - 1);
  double cum = static_cast<double>(zero_);
  double v = max_;
  if (cum > rank) {
    v = 0;
  } else if (!counts_.empty() && q >= 0.5) {
    // High quantiles: from the top (fewer buckets to visit). Bucket i is the answer when the
    // counts up to and including it exceed the rank and those below it do not.
    uint64_t le = count_;  // zero bucket + every count up to and including bucket i
    for (std::size_t i = counts_.size(); i-- > 0;) {
      uint64_t below = le - counts_[i];
      if (counts_[i] && static_cast<double>(below) <= rank) {
        v = value_of(lo_ + static_cast<int>(i));
        break;
      }
      le = below;
    }
  } else if (!counts_.empty()) {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      cum += static_cast<double>(counts_[i]);
      if (cum > rank) {
        v = value_of(lo_ + static_cast<int>(i));
        break;
      }
    }
  } else {
    std::array<int16_t, kInline> sorted = inline_;
    std::sort(sorted.begin(), sorted.begin() + inline_n_);
    for (int k = 0; k < inline_n_; ++k) {
      cum += 1;
      if (cum > rank) {
        v = value_of(sorted[k]);
        break;
      }
    }
  }
  return std::clamp(v, min_, max_);
}

void Sketch::clear() { *this = Sketch(); }

void Sketch::serialize(std::string* out) const {
  varint::put(out, count_);
  if (count_ == 0) return;
  varint::put(out, zero_);
  varint::put_double(out, min_);
  varint::put_double(out, max_);
  varint::put_double(out, sum_);
  // Buckets in index order, either dense (every count from the lowest to the highest non-empty
  // bucket, zeros included) or sparse ((index delta, count) pairs), whichever is shorter.
  std::vector<std::pair<int32_t, uint64_t>> nz;
  if (!counts_.empty()) {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i]) nz.emplace_back(lo_ + static_cast<int32_t>(i), counts_[i]);
    }
  } else {
    std::array<int16_t, kInline> sorted = inline_;
    std::sort(sorted.begin(), sorted.begin() + inline_n_);
    for (int k = 0; k < inline_n_; ++k) {
      if (!nz.empty() && nz.back().first == sorted[k]) {
        ++nz.back().second;
      } else {
        nz.emplace_back(sorted[k], 1);
      }
    }
  }
  if (nz.empty()) {
    varint::put(out, 0);
    return;
  }
  uint64_t range = static_cast<uint64_t>(nz.back().first - nz.front().first + 1);
  bool dense = range < 2 * nz.size();
  if (dense) {
    // Fixed-width little-endian counts (merged without decoding varints): the escape layout 1
    // ("dense, no bucket", which the varint layouts never write), width, count, first index.
    uint64_t top = 0;
    for (const auto& [i, c] : nz) top = std::max(top, c);
    int width = top < (1u << 8) ? 1 : top < (1u << 16) ? 2 : top < (1ull << 32) ? 4 : 8;
    varint::put(out, 1);
    varint::put(out, static_cast<uint64_t>(width));
    varint::put(out, range);
    varint::put(out, varint::zigzag(nz.front().first));
    std::size_t at = out->size();
    out->resize(at + range * static_cast<std::size_t>(width), '\0');
    char* base = out->data() + at;
    for (const auto& [i, c] : nz) {
      std::memcpy(base + static_cast<std::size_t>(i - nz.front().first) * width, &c,
                  static_cast<std::size_t>(width));  // little-endian hosts (see varint.hpp)
    }
    return;
  }
  // Sparse: (index delta, count) varint pairs.
  varint::put(out, nz.size() << 1);
  varint::put(out, varint::zigzag(nz.front().first));
  {
    for (std::size_t k = 0; k < nz.size(); ++k) {
      if (k) varint::put(out, static_cast<uint64_t>(nz[k].first - nz[k - 1].first - 1));
      varint::put(out, nz[k].second);
    }
  }
}

bool Sketch::merge_encoded(std::string_view* in) {
  uint64_t count = 0;
  if (!varint::get(in, &count)) return false;
  if (count == 0) return true;
  uint64_t zero = 0, layout = 0, first = 0;
  double mn = 0, mx = 0, sum = 0;
  if (!varint::get(in, &zero) || !varint::get_double(in, &mn) || !varint::get_double(in, &mx) ||
      !varint::get_double(in, &sum) || !varint::get(in, &layout)) {
    return false;
  }
  constexpr uint64_t kSpan = kMaxIndex - kMinIndex + 1;
  if (layout == kFixedLayout) {
    const uint8_t* src = nullptr;
    uint64_t width = 0, n = 0;
    int64_t lo = 0;
    if (!read_fixed(in, &width, &n, &lo, &src)) return false;
    count_ += count;
    zero_ += zero;
    sum_ += sum;
    min_ = std::min(min_, mn);
    max_ = std::max(max_, mx);
    const auto hi = static_cast<int>(lo + static_cast<int64_t>(n) - 1);
    if (counts_.empty() && inline_n_ == 0) {
      // First buckets of a merge target (queries, roll-ups): leave room on both sides, as the
      // next tiles of the same cell usually reach a few buckets further.
      int slack = std::max(8, static_cast<int>(n) / 4);
      lo_ = std::max(kMinIndex, static_cast<int>(lo) - slack);
      counts_.assign(static_cast<std::size_t>(std::min(kMaxIndex, hi + slack) - lo_ + 1), 0);
    } else {
      if (counts_.empty()) spill();
      ensure(static_cast<int>(lo));
      ensure(hi);
    }
    uint64_t* dst = counts_.data() + (lo - lo_);
    switch (width) {
      case 1:
        add_fixed<uint8_t>(dst, src, n);
        break;
      case 2:
        add_fixed<uint16_t>(dst, src, n);
        break;
      case 4:
        add_fixed<uint32_t>(dst, src, n);
        break;
      default:
        add_fixed<uint64_t>(dst, src, n);
        break;
    }
    return true;
  }
  uint64_t n = layout >> 1;
  bool dense = layout & 1;
  if (n > kSpan) return false;
  if (n > 0 && !varint::get(in, &first)) return false;
  int64_t lo = varint::unzigzag(first);
  if (n > 0 && (lo < kMinIndex || lo > kMaxIndex)) return false;
  count_ += count;
  zero_ += zero;
  sum_ += sum;
  min_ = std::min(min_, mn);
  max_ = std::max(max_, mx);
  if (n == 0) return true;
  if (dense) {
    int64_t hi = lo + static_cast<int64_t>(n) - 1;
    if (hi > kMaxIndex) return false;
    if (counts_.empty()) spill();
    ensure(static_cast<int>(lo));
    ensure(static_cast<int>(hi));
    uint64_t* dst = counts_.data() + (lo - lo_);
    for (uint64_t k = 0; k < n; ++k) {
      uint64_t c = 0;
      if (!varint::get(in, &c)) return false;
      dst[k] += c;
    }
    return true;
  }
  int64_t index = lo;
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t d = 0, c = 0;
    if (k > 0 && !varint::get(in, &d)) return false;
    if (!varint::get(in, &c)) return false;
    index += k > 0 ? static_cast<int64_t>(d) + 1 : 0;
    if (index > kMaxIndex || c == 0) return false;
    add_index(static_cast<int>(index), c);
  }
  return true;
}

bool Sketch::skip_encoded(std::string_view* in) {
  uint64_t count = 0, v = 0, layout = 0;
  if (!varint::get(in, &count)) return false;
  if (count == 0) return true;
  if (!varint::get(in, &v) || in->size() < 24) return false;
  in->remove_prefix(24);
  if (!varint::get(in, &layout)) return false;
  if (layout == kFixedLayout) {
    const uint8_t* src = nullptr;
    uint64_t width = 0, n = 0;
    int64_t lo = 0;
    return read_fixed(in, &width, &n, &lo, &src);
  }
  uint64_t n = layout >> 1;
  if (n == 0) return true;
  uint64_t varints = 1 + ((layout & 1) ? n : 2 * n - 1);
  for (uint64_t k = 0; k < varints; ++k) {
    if (!varint::get(in, &v)) return false;
  }
  return true;
}

bool Sketch::operator==(const Sketch& other) const {
  std::string a, b;
  serialize(&a);
  other.serialize(&b);
  return a == b;
}

}  // namespace pingmesh::collector
