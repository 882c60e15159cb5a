#pragma once
/// The probe schedule: every (target, address, protocol, port, DSCP, payload) of the pinglist is
/// a task with its own interval. A task's probes sit on a grid `k * interval + phase`, the phase
/// taken from a stable hash of the task and the agent, plus a bounded deterministic jitter per
/// cycle, so probes spread evenly over the interval and never burst. A global rate cap (token
/// bucket) and an in-flight cap defer probes instead of bunching them; a deferred probe fires late
/// once and the next one returns to the grid (no catch-up burst). Pure logic: time is passed in
/// (monotonic microseconds), so tests drive it with an injected clock. Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/result.hpp"
#include "model/pinglist.hpp"

namespace pingmesh::agent {

/// Limits and shape of the schedule.
struct ScheduleOptions {
  /// Floor of any task's interval; the paper's 10 s unless the lab override lowers it.
  uint32_t min_interval_ms = model::kMinIntervalMs;
  uint32_t max_payload_bytes = model::kMaxPayloadBytes;  ///< payloads above are clamped
  int64_t slot_us = 25000;          ///< timer granularity: probes due in one slot fire together
  double jitter_fraction = 0.05;    ///< per-cycle jitter, +- this fraction of the interval
  double max_rate = 1000;           ///< probes per second over all tasks; <= 0 = unlimited
  /// Depth of the rate cap's token bucket, in milliseconds of max_rate (at least one slot's worth
  /// and one probe): the cap lets a momentary cluster of due probes through at once and holds
  /// back only a sustained excess, so over any window of T ms at most (rate_burst_ms + T) *
  /// max_rate / 1000 probes start.
  uint32_t rate_burst_ms = 100;
  std::size_t max_inflight = 1000;  ///< probes in flight at once
  uint64_t seed = 0;  ///< per-agent seed (hash of its name) so agents do not share phases
};

/// One scheduled probe kind towards one target.
struct ProbeTask {
  uint64_t id = 0;
  model::PinglistEntry entry;  ///< interval and payload already clamped to the limits
  std::shared_ptr<const PeerLabels> peer;
  int64_t interval_us = 0;
  int64_t phase_us = 0;     ///< offset in [0, interval)
  int64_t next_due_us = 0;  ///< monotonic time of the next probe
  uint64_t cycle = 0;       ///< grid index of next_due_us
  /// Kept by the engine between probes (UDP/ICMP duplicate and reorder accounting); survives a
  /// pinglist change that keeps the task, goes with the task.
  struct Answers {
    bool answered = false;
    uint32_t last_answered = 0;       ///< sequence number of the latest answer
    uint32_t pending_duplicates = 0;  ///< duplicates seen since the task's last result
  };
  mutable Answers answers;
};

/// What apply() changed.
struct ApplyStats {
  std::size_t added = 0;
  std::size_t removed = 0;
  std::size_t kept = 0;              ///< unchanged tasks keep their phase and next due time
  std::size_t clamped_interval = 0;  ///< entries whose interval was raised to the floor
  std::size_t clamped_payload = 0;   ///< entries whose payload was lowered to the cap
};

/// Why take_due() held back a due probe.
struct LimitHits {
  uint64_t rate = 0;
  uint64_t inflight = 0;
};

class Scheduler {
 public:
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

  explicit Scheduler(ScheduleOptions options);

  /// Replaces the task set with the entries of a pinglist. Tasks whose key (target, address,
  /// protocol, port, dscp, payload) and interval are unchanged keep their schedule; others start at
  /// their phase within the next interval.
  ApplyStats apply(const std::vector<model::PinglistEntry>& entries, int64_t now_us);
  /// Drops every task (kill switch, no pinglist).
  void clear();

  /// Appends to `out` the tasks due at or before now_us, earliest first, as far as the rate cap
  /// and `max_inflight - inflight` allow, and moves each to its next grid point after now_us.
  /// Pointers stay valid until the next apply()/clear().
  void take_due(int64_t now_us, std::size_t inflight, std::vector<const ProbeTask*>* out);

  /// When the event loop should next call take_due(), rounded up to the slot; kNever when idle.
  /// A probe held back by the rate cap is retried when a token is due, one held back by the
  /// in-flight cap at the next slot.
  int64_t next_wake_us(int64_t now_us, std::size_t inflight) const;

  /// Rounds a time up to the end of its slot. Slots are `slot_us` apart from this agent's offset
  /// (a hash of the seed; 0 when the seed is 0), so agents sharing a machine - and its monotonic
  /// clock, as in the namespace lab - do not all wake at the same instants.
  int64_t slot_ceil(int64_t t_us) const;
  int64_t slot_offset_us() const { return slot_offset_us_; }

  std::size_t size() const { return tasks_.size(); }
  const ProbeTask* find(uint64_t id) const;
  /// Depth of the rate cap's bucket in probes (0 when there is no cap).
  double rate_burst() const;
  /// Probes held back so far, by limit.
  const LimitHits& limit_hits() const { return limit_hits_; }
  const ScheduleOptions& options() const { return options_; }

  /// The key that identifies a task across pinglist versions.
  static std::string task_key(const model::PinglistEntry& e);

 private:
  int64_t due_at(const ProbeTask& t, uint64_t cycle) const;
  /// First cycle whose due time is > now (>= now when `inclusive`).
  uint64_t first_cycle_after(const ProbeTask& t, int64_t now_us) const;
  void refill(int64_t now_us);

  ScheduleOptions options_;
  int64_t slot_offset_us_ = 0;
  std::unordered_map<std::string, uint64_t> ids_;
  std::unordered_map<uint64_t, ProbeTask> tasks_;
  /// A task's place in the queue; ordered by due time, then id (deterministic ties).
  struct Queued {
    int64_t due_us;
    uint64_t id;
    ProbeTask* task;  ///< into tasks_ (node-based: stable until the task is removed)
    bool operator>(const Queued& o) const {
      return due_us != o.due_us ? due_us > o.due_us : id > o.id;
    }
  };
  std::vector<Queued> queue_;  ///< a binary min-heap of every task, by next due time
  uint64_t next_id_ = 1;
  double tokens_ = 0;
  int64_t last_refill_us_ = 0;
  bool refilled_ = false;
  LimitHits limit_hits_;
};

}  // namespace pingmesh::agent
