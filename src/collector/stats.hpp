#pragma once
/// Aggregates of probe results: the loss rule, per-key statistics, keyed collections of them and
/// their storage encoding ("tiles"). Pure values, no I/O, not thread-safe.

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/sketch.hpp"

namespace pingmesh::collector {

/// What an aggregate is keyed by. Key fields a/b mean, per level:
///   kPair       a = source server, b = target server, with protocol and DSCP
///   kRackPair   a = source rack,   b = target rack   (DSCP 0)
///   kDcPair     a = source DC,     b = target DC     (DSCP 0); (X, X) is DC X's SLA
///   kServerSrc  a = server as source (b 0)
///   kServerDst  a = server as target (b 0)
///   kRack       a = source rack, intra-DC probes only (the rack's SLA)
/// Ids come from Names. Every level is per protocol.
enum class Level : uint8_t { kPair = 0, kRackPair, kDcPair, kServerSrc, kServerDst, kRack };
inline constexpr int kLevels = 6;
/// "pair", "rack_pair", "dc_pair", "server_src", "server_dst", "rack".
std::string_view to_string(Level level);
std::optional<Level> parse_level(std::string_view s);

/// Protocol and outcome codes: the values of pingmesh.v1.Protocol / pingmesh.v1.Outcome.
enum class Protocol : uint8_t { kIcmp = 1, kTcp = 2, kUdp = 3, kHttp = 4 };
enum class Outcome : uint8_t { kOk = 1, kDrop = 2, kTimeout = 3, kRefused = 4, kError = 5 };
/// "icmp", "tcp", "udp", "http".
std::string_view to_string(Protocol p);
std::optional<Protocol> parse_protocol(std::string_view s);

struct Key {
  uint32_t a = 0;
  uint32_t b = 0;
  uint8_t protocol = 0;
  uint8_t dscp = 0;
  bool operator==(const Key&) const = default;
  auto operator<=>(const Key&) const = default;
};

/// Counters and the RTT sketch of one aggregate.
///
/// Loss (the paper's rule): TCP and HTTP count a probe that connected only after SYN
/// retransmission (DROP) as one drop, over the probes that connected (OK + DROP); failed connects
/// (TIMEOUT, REFUSED, ERROR) are failures, not loss — a dead server is not network loss. UDP and
/// ICMP count unanswered probes (TIMEOUT) over all probes sent. `lost` / `loss_base` hold the
/// numerator and denominator so aggregates merge by addition. The sketch holds the RTT of probes
/// answered at once (OK); a DROP's RTT measures the retransmission timer, not the network.
struct Stats {
  uint64_t probes = 0;
  uint64_t ok = 0;
  uint64_t drops = 0;
  uint64_t timeouts = 0;
  uint64_t refused = 0;
  uint64_t errors = 0;
  uint64_t lost = 0;
  uint64_t loss_base = 0;
  Sketch rtt;

  /// Adds one result. `rtt_index` must be Sketch::index_of(rtt_us) when rtt_us >= 1.
  void add(Protocol protocol, Outcome outcome, uint32_t rtt_us, int rtt_index) {
    ++probes;
    bool tcp_like = protocol == Protocol::kTcp || protocol == Protocol::kHttp;
    switch (outcome) {
      case Outcome::kOk:
        ++ok;
        ++loss_base;
        rtt.add_at(static_cast<double>(rtt_us), rtt_index);
        break;
      case Outcome::kDrop:
        ++drops;
        ++lost;
        ++loss_base;
        break;
      case Outcome::kTimeout:
        ++timeouts;
        if (!tcp_like) {
          ++lost;
          ++loss_base;
        }
        break;
      case Outcome::kRefused:
        ++refused;
        if (!tcp_like) ++loss_base;
        break;
      case Outcome::kError:
        ++errors;
        if (!tcp_like) ++loss_base;
        break;
    }
  }
  void merge(const Stats& other);
  /// Merges the counters only (queries that need no quantile).
  void merge_counters(const Stats& other);
  /// Probes answered (OK + DROP).
  uint64_t successes() const { return ok + drops; }
  /// Probes not answered (TIMEOUT + REFUSED + ERROR).
  uint64_t failures() const { return timeouts + refused + errors; }
  /// lost / loss_base; nullopt when nothing counts towards loss.
  std::optional<double> loss() const;

  /// Appends the encoding (varints + sketch).
  void serialize(std::string* out) const;
  /// Decodes one encoded Stats from the front of `in` and merges it (consuming it).
  bool merge_encoded(std::string_view* in);
  /// Decodes the counters and skips the sketch (queries that need no quantile).
  bool merge_encoded_counters(std::string_view* in);
};

/// A keyed collection of Stats with an open-addressing index; cells are never removed, so cell
/// numbers stay valid while the collection grows. `scope` is recorded with each cell when it is
/// created: the storage partition it belongs to (see Tile).
class Cells {
 public:
  /// The cell number of `key`, creating the cell (with `scope`) when absent.
  uint32_t find_or_add(const Key& key, uint32_t scope);
  /// The cell number of `key`, or kNone.
  uint32_t find(const Key& key) const;
  static constexpr uint32_t kNone = 0xffffffffu;

  Stats& stats(uint32_t cell) { return stats_[cell]; }
  /// The Stats array (valid until the next find_or_add that adds a cell).
  Stats* data() { return stats_.data(); }
  const Stats& stats(uint32_t cell) const { return stats_[cell]; }
  const Key& key(uint32_t cell) const { return keys_[cell]; }
  uint32_t scope(uint32_t cell) const { return scopes_[cell]; }
  std::size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  /// Adds `stats` into the cell of `key`.
  void merge(const Key& key, uint32_t scope, const Stats& stats);
  /// Approximate heap bytes held (for memory limits and metrics).
  std::size_t memory_bytes() const;

 private:
  void grow();
  static uint64_t hash(const Key& k) {
    uint64_t x = (static_cast<uint64_t>(k.a) << 32 | k.b) * 0x9e3779b97f4a7c15ULL;
    x ^= (static_cast<uint64_t>(k.protocol) << 8 | k.dscp) * 0xc2b2ae3d27d4eb4fULL;
    return x ^ (x >> 29);
  }
  /// Open-addressing slot: the key inline (one cache miss per lookup) and cell number + 1.
  struct Slot {
    Key key;
    uint32_t cell = 0;  ///< 0 = empty
  };
  std::vector<Slot> table_;
  std::vector<Key> keys_;
  std::vector<uint32_t> scopes_;
  std::vector<Stats> stats_;
};

/// A tile: the aggregates of one level and one scope over one window, the unit of storage.
/// Scopes: kPair -> source rack; kRackPair, kServerSrc, kServerDst, kRack -> (source) DC;
/// kDcPair -> 0.
struct TileId {
  Level level = Level::kPair;
  uint32_t scope = 0;
  int64_t granularity_s = 60;
  int64_t start_s = 0;  ///< window start, Unix seconds, a multiple of granularity_s
  bool operator==(const TileId&) const = default;
};

/// Encodes the listed cells of `cells` as one tile, sorted by key.
std::string encode_tile(const Cells& cells, const std::vector<uint32_t>& cell_numbers);
/// Decodes a tile, calling `fn(key, encoded stats)` per cell; `fn` consumes the stats with
/// Stats::merge_encoded / merge_encoded_counters or skips them with skip_stats. False when
/// malformed.
bool decode_tile(std::string_view data,
                 const std::function<bool(const Key&, std::string_view* stats)>& fn);
/// Skips one encoded Stats.
bool skip_stats(std::string_view* in);

/// Reads a tile cell by cell (what decode_tile does, as a cursor, so several tiles can be merged
/// in lockstep): after a successful next(), key() is the cell's key and stats() its encoded Stats,
/// which the caller must consume (merge_encoded, merge_encoded_counters or skip_stats) before the
/// next call.
class TileReader {
 public:
  explicit TileReader(std::string_view data);
  /// Advances to the next cell; false at the end or on malformed input (see ok()).
  bool next();
  const Key& key() const { return key_; }
  std::string_view* stats() { return &data_; }
  /// False once malformed input was seen (also when cells were left unconsumed, or bytes
  /// follow the last cell).
  bool ok() const { return ok_; }

 private:
  std::string_view data_;
  uint64_t left_ = 0;
  Key key_{};
  std::size_t before_ = 0;  ///< data_ size when the current cell's stats began
  bool started_ = false;
  bool ok_ = true;
};

}  // namespace pingmesh::collector
