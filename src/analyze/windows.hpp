#pragma once
/// Short sliding windows over the result stream, for alerting within seconds (the collector's
/// 1-minute windows are too coarse). Results are bucketed by *arrival* time (now_ms passed to
/// observe) into buckets of bucket_ms; a ring keeps the last `buckets` of them. Per bucket and
/// level (server as source, server as target, rack pair, DC pair, rack) a collector::Stats
/// (the paper's loss rule and a DDSketch) plus a count of slow answers. Pairs that failed are
/// tracked individually (black-hole evidence); per server the last arrival of a batch and of an
/// answer. Pure (time passed in), not thread-safe, copyable.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "collector/stats.hpp"
#include "model/topology.hpp"
#include "pingmesh.pb.h"

namespace pingmesh::analyze {

/// Hash of a collector::Key.
struct KeyHash {
  std::size_t operator()(const collector::Key& k) const {
    uint64_t x = (static_cast<uint64_t>(k.a) << 32 | k.b) * 0x9e3779b97f4a7c15ULL;
    x ^= (static_cast<uint64_t>(k.protocol) << 8 | k.dscp) * 0xc2b2ae3d27d4eb4fULL;
    return static_cast<std::size_t>(x ^ (x >> 29));
  }
};

/// Dense ids (from 0) of DCs, racks and servers seen in results or in the topology.
class Directory {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;
  uint32_t dc(std::string_view name);
  /// Rack `name` of DC `dc_id`.
  uint32_t rack(uint32_t dc_id, std::string_view name);
  /// Server `name`, placed in (dc_id, rack_id); the placement follows the latest report.
  uint32_t server(std::string_view name, uint32_t dc_id, uint32_t rack_id);
  uint32_t find_dc(std::string_view name) const;
  uint32_t find_rack(uint32_t dc_id, std::string_view name) const;
  uint32_t find_server(std::string_view name) const;

  std::size_t dc_count() const { return dc_names_.size(); }
  std::size_t rack_count() const { return rack_names_.size(); }
  std::size_t server_count() const { return server_names_.size(); }
  const std::string& dc_name(uint32_t id) const { return dc_names_[id]; }
  const std::string& rack_name(uint32_t id) const { return rack_names_[id]; }
  const std::string& server_name(uint32_t id) const { return server_names_[id]; }
  uint32_t rack_dc(uint32_t rack_id) const { return rack_dc_[rack_id]; }
  uint32_t server_dc(uint32_t id) const { return server_dc_[id]; }
  uint32_t server_rack(uint32_t id) const { return server_rack_[id]; }
  /// Marks the servers (and their racks and DCs) of a topology as expected to report, and
  /// forgets the mark of servers no longer in it.
  void set_expected(const model::Topology& topology);
  bool expected(uint32_t server) const { return server_expected_[server]; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using NameMap = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;
  NameMap dcs_, racks_, servers_;  ///< racks keyed "dc/rack"
  std::vector<std::string> dc_names_, rack_names_, server_names_;
  std::vector<uint32_t> rack_dc_, server_dc_, server_rack_;
  std::vector<bool> server_expected_;
};

/// Aggregation levels of the windows. Keys (collector::Key a, b):
///   kServerSrc (server, 0), kServerDst (server, 0), kRackPair (src rack, dst rack),
///   kDcPair (src DC, dst DC), kRack (rack, 0: intra-DC probes from or to the rack).
enum class WLevel : uint8_t { kServerSrc = 0, kServerDst, kRackPair, kDcPair, kRack };
/// Number of window levels.
inline constexpr int kWLevels = 5;

/// Counters of a window aggregate; `slow` counts answered probes with an RTT above the
/// windows' slow threshold.
struct Agg {
  collector::Stats stats;
  uint64_t slow = 0;
  void merge(const Agg& o, bool sketch) {
    if (sketch) {
      stats.merge(o.stats);
    } else {
      stats.merge_counters(o.stats);
    }
    slow += o.slow;
  }
};

/// Sums keyed by collector::Key.
using AggMap = std::unordered_map<collector::Key, Agg, KeyHash>;

/// A pair (source, target, protocol) with failed probes in the window.
struct PairTrack {
  int64_t first_fail_us = 0;  ///< start of the first failed probe (result timestamp)
  int64_t last_fail_us = 0;   ///< start of the last failed probe
  int64_t last_fail_ms = 0;   ///< arrival of the last failure
  uint32_t failures = 0;
  uint32_t successes_after = 0;  ///< answered probes that started after first_fail_us
};

/// Per-server activity (arrival times, Unix ms; 0 = never).
struct Activity {
  int64_t first_seen_ms = 0;       ///< first batch from it or first answer by it
  int64_t last_batch_ms = 0;       ///< last batch it sent
  int64_t last_answer_ms = 0;      ///< last arrival of a probe it answered
  /// A streak of answered probes of one protocol: the latest start of an answered probe, and
  /// the start of the first answer after a gap of more than kStreakGapUs.
  struct Streak {
    int64_t last_ts_us = 0;
    int64_t since_us = 0;
  };
  /// Per protocol (indexed by collector::Protocol): answers by it as a target, answers to it as
  /// a source. Per protocol because a host whose agent is gone still answers ICMP (the kernel)
  /// while its TCP, UDP and HTTP probes fail: it does not "answer others" for those.
  std::array<Streak, 5> answering{};
  std::array<Streak, 5> reaching{};
  static constexpr int64_t kStreakGapUs = 15'000'000;
};

/// Bucket size and count, and the slow-answer threshold.
struct WindowOptions {
  int64_t bucket_ms = 5000;
  int buckets = 12;         ///< horizon = bucket_ms * buckets
  uint32_t slow_us = 5000;  ///< answers slower than this count as slow (paper: 5 ms)
};

/// Counts of what observe() did not use.
struct ObserveCounts {
  uint64_t results = 0;
  uint64_t bad = 0;  ///< bad peer index, protocol or outcome, or a batch with no source
};

/// The windows themselves; see the file comment.
class Windows {
 public:
  explicit Windows(WindowOptions options = {});

  /// Whether a level keeps RTT sketches (quantiles). Levels without record the counters only
  /// (their sketches hold zeros). By default only kDcPair and kRack keep sketches; the engine
  /// turns others on when a latency rule needs them (from the next result on).
  void set_sketch(WLevel level, bool on) { sketch_[static_cast<int>(level)] = on; }
  bool sketch(WLevel level) const { return sketch_[static_cast<int>(level)]; }

  /// Adds a batch that arrived at now_ms.
  ObserveCounts observe(const v1::ResultBatch& batch, int64_t now_ms);
  /// Drops buckets and pair tracks older than the horizon at now_ms.
  void advance(int64_t now_ms);
  /// Sums the level over the buckets covering (now_ms - window_ms, now_ms], into out (cleared).
  /// `sketch` = false merges counters only.
  void sum(WLevel level, int64_t now_ms, int64_t window_ms, bool sketch, AggMap* out) const;
  /// Pair tracks: key = (source, target, protocol).
  const std::unordered_map<collector::Key, PairTrack, KeyHash>& pairs() const { return pairs_; }

  Directory& directory() { return directory_; }
  const Directory& directory() const { return directory_; }
  const std::vector<Activity>& activity() const { return activity_; }
  const WindowOptions& options() const { return options_; }
  int64_t horizon_ms() const { return options_.bucket_ms * options_.buckets; }

 private:
  struct Bucket {
    int64_t index = -1;  ///< now_ms / bucket_ms of its content; -1 = empty
    std::array<collector::Cells, kWLevels> cells;
    std::array<std::vector<uint64_t>, kWLevels> slow;
    /// The last key looked up per level and its cell (consecutive results share most keys).
    std::array<collector::Key, kWLevels> last_key{};
    std::array<uint32_t, kWLevels> last_cell{};
  };
  Bucket& bucket_at(int64_t now_ms);
  void add(Bucket& b, WLevel level, const collector::Key& key, collector::Protocol protocol,
           collector::Outcome outcome, uint32_t rtt_us, int rtt_index);

  WindowOptions options_;
  std::array<bool, kWLevels> sketch_{false, false, false, true, true};
  Directory directory_;
  std::vector<Bucket> ring_;
  std::vector<Activity> activity_;
  std::unordered_map<collector::Key, PairTrack, KeyHash> pairs_;
  std::vector<uint32_t> tracked_by_src_;
  std::vector<uint32_t> peer_ids_;  ///< scratch: batch peer index -> server id
};

}  // namespace pingmesh::analyze
