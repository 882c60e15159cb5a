#include "agent/schedule.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "common/hash.hpp"

namespace pingmesh::agent {

Scheduler::Scheduler(ScheduleOptions options) : options_(options) {
  if (options_.slot_us <= 0) options_.slot_us = 1;
  if (options_.seed != 0) {
    slot_offset_us_ = static_cast<int64_t>(hash::combine(options_.seed, 0x510750f5e7ULL) %
                                           static_cast<uint64_t>(options_.slot_us));
  }
  options_.jitter_fraction = std::clamp(options_.jitter_fraction, 0.0, 0.25);
  if (options_.max_inflight == 0) options_.max_inflight = 1;
}

std::string Scheduler::task_key(const model::PinglistEntry& e) {
  return fmt::format("{}|{}|{}|{}|{}|{}", e.target, e.address.to_string(),
                     model::to_string(e.protocol), e.port, e.dscp, e.payload_bytes);
}

int64_t Scheduler::due_at(const ProbeTask& t, uint64_t cycle) const {
  int64_t base = static_cast<int64_t>(cycle) * t.interval_us + t.phase_us;
  auto span = static_cast<int64_t>(options_.jitter_fraction * static_cast<double>(t.interval_us));
  if (span <= 0) return base;
  // Keyed by the phase (a stable hash of the task), not the run-local id: deterministic.
  uint64_t h =
      hash::combine(hash::combine(options_.seed, static_cast<uint64_t>(t.phase_us)), cycle);
  int64_t jitter = static_cast<int64_t>(h % static_cast<uint64_t>(2 * span + 1)) - span;
  return base + jitter;
}

uint64_t Scheduler::first_cycle_after(const ProbeTask& t, int64_t now_us) const {
  int64_t k = (now_us - t.phase_us) / t.interval_us;
  if (k < 0) k = 0;
  auto cycle = static_cast<uint64_t>(k);
  while (due_at(t, cycle) <= now_us) ++cycle;
  return cycle;
}

ApplyStats Scheduler::apply(const std::vector<model::PinglistEntry>& entries, int64_t now_us) {
  ApplyStats stats;
  std::unordered_map<std::string, uint64_t> new_ids;
  new_ids.reserve(entries.size());
  for (const auto& raw : entries) {
    model::PinglistEntry e = raw;
    if (e.interval_ms < options_.min_interval_ms) {
      e.interval_ms = options_.min_interval_ms;
      ++stats.clamped_interval;
    }
    if (e.payload_bytes > options_.max_payload_bytes) {
      e.payload_bytes = options_.max_payload_bytes;
      ++stats.clamped_payload;
    }
    std::string key = task_key(e);
    if (new_ids.count(key)) continue;  // duplicate entry: probe it once
    auto labels = std::make_shared<PeerLabels>(
        PeerLabels{e.target, e.address.to_string(), e.dst_dc, e.dst_rack});
    auto old = ids_.find(key);
    if (old != ids_.end()) {
      ProbeTask& t = tasks_.at(old->second);
      bool same_interval = t.entry.interval_ms == e.interval_ms;
      t.entry = e;
      if (t.peer->dc != labels->dc || t.peer->rack != labels->rack) t.peer = std::move(labels);
      new_ids.emplace(std::move(key), t.id);
      if (same_interval) {
        ++stats.kept;
        continue;
      }
      t.interval_us = static_cast<int64_t>(e.interval_ms) * 1000;
      t.phase_us = static_cast<int64_t>(hash::hash64(old->first, options_.seed) %
                                        static_cast<uint64_t>(t.interval_us));
      t.cycle = first_cycle_after(t, now_us);
      t.next_due_us = due_at(t, t.cycle);
      ++stats.kept;
      continue;
    }
    ProbeTask t;
    t.id = next_id_++;
    t.interval_us = static_cast<int64_t>(e.interval_ms) * 1000;
    t.phase_us = static_cast<int64_t>(hash::hash64(key, options_.seed) %
                                      static_cast<uint64_t>(t.interval_us));
    t.entry = std::move(e);
    t.peer = std::move(labels);
    t.cycle = first_cycle_after(t, now_us);
    t.next_due_us = due_at(t, t.cycle);
    new_ids.emplace(std::move(key), t.id);
    tasks_.emplace(t.id, std::move(t));
    ++stats.added;
  }
  for (const auto& [key, id] : ids_) {
    if (new_ids.count(key)) continue;
    tasks_.erase(id);
    ++stats.removed;
  }
  ids_ = std::move(new_ids);
  // Rebuild the queue: O(n), once per pinglist (tasks_ is node-based, so the pointers of the
  // tasks that stayed are still valid).
  queue_.clear();
  queue_.reserve(tasks_.size());
  for (auto& [id, t] : tasks_) queue_.push_back({t.next_due_us, id, &t});
  std::make_heap(queue_.begin(), queue_.end(), std::greater<>());
  return stats;
}

void Scheduler::clear() {
  ids_.clear();
  tasks_.clear();
  queue_.clear();
}

double Scheduler::rate_burst() const {
  if (options_.max_rate <= 0) return 0;
  double slot = options_.max_rate * static_cast<double>(options_.slot_us) / 1e6;
  double burst = options_.max_rate * static_cast<double>(options_.rate_burst_ms) / 1e3;
  return std::max({1.0, slot, burst});
}

void Scheduler::refill(int64_t now_us) {
  if (options_.max_rate <= 0) return;
  double cap = rate_burst();
  if (!refilled_) {
    tokens_ = cap;
    refilled_ = true;
  } else if (now_us > last_refill_us_) {
    tokens_ = std::min(
        cap, tokens_ + options_.max_rate * static_cast<double>(now_us - last_refill_us_) / 1e6);
  }
  last_refill_us_ = std::max(last_refill_us_, now_us);
}

void Scheduler::take_due(int64_t now_us, std::size_t inflight, std::vector<const ProbeTask*>* out) {
  refill(now_us);
  while (!queue_.empty() && queue_.front().due_us <= now_us) {
    if (inflight >= options_.max_inflight) {
      ++limit_hits_.inflight;
      return;
    }
    if (options_.max_rate > 0 && tokens_ < 1.0) {
      ++limit_hits_.rate;
      return;
    }
    if (options_.max_rate > 0) tokens_ -= 1.0;
    ++inflight;
    // Re-queue in place: pop the heap's top to the back, give it the next due time, push it
    // back (no allocation, no lookup).
    std::pop_heap(queue_.begin(), queue_.end(), std::greater<>());
    Queued& q = queue_.back();
    ProbeTask& t = *q.task;
    out->push_back(&t);
    // Due times grow with the cycle (the jitter is under half an interval), so when the next
    // cycle is still ahead it is the answer; only a probe held back past it searches.
    int64_t next = due_at(t, t.cycle + 1);
    if (next > now_us) {
      ++t.cycle;
    } else {
      t.cycle = std::max(t.cycle + 1, first_cycle_after(t, now_us));
      next = due_at(t, t.cycle);
    }
    t.next_due_us = next;
    q.due_us = t.next_due_us;
    std::push_heap(queue_.begin(), queue_.end(), std::greater<>());
  }
}

int64_t Scheduler::slot_ceil(int64_t t_us) const {
  int64_t s = options_.slot_us;
  int64_t o = slot_offset_us_;
  if (t_us <= o) return o;
  return (t_us - o + s - 1) / s * s + o;
}

int64_t Scheduler::next_wake_us(int64_t now_us, std::size_t inflight) const {
  if (queue_.empty()) return kNever;
  int64_t due = queue_.front().due_us;
  if (due > now_us) return slot_ceil(due);
  if (inflight >= options_.max_inflight) return slot_ceil(now_us + 1);
  if (options_.max_rate > 0 && tokens_ < 1.0) {
    auto wait = static_cast<int64_t>(std::ceil((1.0 - tokens_) / options_.max_rate * 1e6));
    return slot_ceil(now_us + std::max<int64_t>(wait, 1));
  }
  return slot_ceil(now_us);
}

const ProbeTask* Scheduler::find(uint64_t id) const {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

}  // namespace pingmesh::agent
