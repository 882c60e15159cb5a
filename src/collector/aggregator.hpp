#pragma once
/// Windowed aggregation of result batches (pure: time is passed in). Each result updates its
/// 1-minute window's aggregates at every level (pair, rack pair, DC pair, server as source and as
/// target, rack SLA). Batches are interned once (the peers table maps to ids), and each distinct
/// (peer, protocol, DSCP) of a batch resolves its six cells once, so a result costs one bucket
/// index (a log) and six counter updates, with no allocation. Not thread-safe: the owner locks.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/batch_view.hpp"
#include "collector/names.hpp"
#include "collector/stats.hpp"
#include "pingmesh.pb.h"

namespace pingmesh::collector {

/// Why a result (or a whole batch) was not counted.
enum class Reject : uint8_t {
  kTooOld = 0,     ///< older than the oldest open window
  kFuture,         ///< more than max_future_s ahead of the collector's clock
  kRttAbsurd,      ///< RTT above max_rtt_us
  kBadPeer,        ///< peer index out of range, or the peer has no name or DC
  kBadProtocol,    ///< protocol or outcome unknown
  kBadSource,      ///< the batch has no agent name or DC (whole batch)
  kUnknownServer,  ///< the source is not in the topology (whole batch)
};
inline constexpr int kRejectReasons = 7;
/// "too_old", "future", "rtt_absurd", "bad_peer", "bad_protocol", "bad_source",
/// "unknown_server".
std::string_view to_string(Reject r);

/// What happened to a batch's results.
struct IngestCounts {
  uint64_t accepted = 0;
  uint64_t clamped = 0;  ///< timestamps slightly in the future, counted at the collector's now
  std::array<uint64_t, kRejectReasons> rejected{};
  uint64_t rejected_total() const;
};

struct AggregatorOptions {
  int64_t window_s = 60;             ///< live window length
  int64_t grace_s = 120;             ///< a window accepts results this long after its end
  int64_t max_future_s = 300;        ///< timestamps further ahead are rejected; nearer ones clamped
  uint32_t max_rtt_us = 60'000'000;  ///< RTTs above are rejected as absurd
};

/// The aggregates of one window.
struct Window {
  int64_t start_s = 0;
  uint64_t serial = 0;  ///< unique per Aggregator: cached cell numbers name the window by it
  std::array<Cells, kLevels> levels;
  /// Per pair cell: its cells at the other levels (resolved when the pair cell is created, so a
  /// known pair costs one lookup, not six).
  std::vector<std::array<uint32_t, kLevels - 1>> pair_links;
  uint64_t results = 0;
  Cells& at(Level l) { return levels[static_cast<int>(l)]; }
  const Cells& at(Level l) const { return levels[static_cast<int>(l)]; }
};

class Aggregator {
 public:
  Aggregator(AggregatorOptions options, Names* names);

  /// Adds a batch received at `now_us`. Results in windows older than max(open_from(),
  /// first_open(now), `accept_from_s`) are rejected as too old (WAL replay passes the bound
  /// recorded at ingest so it decides the same way). Returns the counts; *used_accept_from_s (if
  /// given) receives the bound applied.
  IngestCounts add(const BatchView& batch, int64_t now_us, int64_t accept_from_s = 0,
                   int64_t* used_accept_from_s = nullptr);
  /// The same for a protobuf message (converted to a BatchView).
  IngestCounts add(const v1::ResultBatch& batch, int64_t now_us, int64_t accept_from_s = 0,
                   int64_t* used_accept_from_s = nullptr);
  /// Closes the windows that no longer accept results at `now_s` (ended more than grace_s ago)
  /// and returns them, oldest first.
  std::vector<std::unique_ptr<Window>> close(int64_t now_s);
  /// Closes every window (shutdown).
  std::vector<std::unique_ptr<Window>> close_all();
  /// Start of the oldest window that still accepts results.
  int64_t open_from() const { return open_from_; }
  /// Start of the oldest window that accepts results at `now_s`.
  int64_t first_open(int64_t now_s) const;
  /// Raises open_from (start-up: windows before the store's watermark are already stored).
  void set_open_from(int64_t start_s);
  /// Open windows, oldest first (read under the owner's lock).
  const std::map<int64_t, std::unique_ptr<Window>>& windows() const { return windows_; }
  /// Cells held by open windows (all levels).
  std::size_t cell_count() const;
  const AggregatorOptions& options() const { return options_; }
  /// Peer-table entries cached per source agent (bounded by kMaxCachedPeers).
  std::size_t cached_peers() const { return cached_peers_; }
  static constexpr std::size_t kMaxCachedPeers = 4'000'000;

 private:
  struct PeerInfo {
    std::string dc, rack;
    uint32_t server = 0, dc_id = 0, rack_id = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  /// A peer's ids as the batch names it (server 0: unusable peer).
  struct PeerIds {
    uint32_t server = 0, dc_id = 0, rack_id = 0;
  };
  /// Cells of one (peer, protocol, DSCP) in one window (by serial), kept across batches.
  struct Slot {
    uint64_t window = 0;
    uint8_t protocol = 0, dscp = 0;
    std::array<uint32_t, kLevels> cells{};
  };
  /// Per source agent: its last peers table (names, exactly) with the ids it resolved to and the
  /// cells each peer index last used, so an agent re-sending the same table skips the per-peer
  /// name lookups and, within a window, the pair lookups.
  struct AgentCache {
    PeerIds src;
    std::string peers_key;  ///< length-prefixed name, DC, rack of every peer
    std::vector<PeerIds> peers;
    std::vector<Slot> slots;
  };
  const PeerInfo* intern(std::string_view name, std::string_view dc, std::string_view rack);
  AgentCache* agent_cache(const PeerInfo& src, const BatchView& batch);
  Window* window(int64_t start_s);
  void resolve(Slot* slot, Window* w, const PeerIds& src, const PeerIds& dst, uint8_t protocol,
               uint8_t dscp);

  AggregatorOptions options_;
  Names* names_;
  int64_t open_from_ = 0;
  std::map<int64_t, std::unique_ptr<Window>> windows_;
  std::unordered_map<std::string, PeerInfo, Hash, std::equal_to<>> peers_;
  std::unordered_map<uint32_t, AgentCache> agents_;  ///< by source server id
  std::size_t cached_peers_ = 0;
  uint64_t next_serial_ = 1;
  std::string key_scratch_;
  BatchView view_scratch_;
};

}  // namespace pingmesh::collector
