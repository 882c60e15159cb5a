#pragma once
/// The bounded buffer between the event loop and the uploader. When full, the oldest results
/// are dropped and counted, so memory stays bounded and every result is either uploaded or
/// counted as dropped. Thread-safe (one mutex; producers push in batches).

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "agent/result.hpp"

namespace pingmesh::agent {

class ResultBuffer {
 public:
  /// `capacity` >= 1 results.
  explicit ResultBuffer(std::size_t capacity);

  /// Appends results (moved from), dropping the oldest ones when full. Returns how many were
  /// dropped by this call. Wakes a waiter once `batch_size` (see wait_for) results are held.
  std::size_t push(std::vector<ProbeResult>* results);
  /// Removes and returns up to `max` of the oldest results.
  std::vector<ProbeResult> take(std::size_t max);
  /// Blocks until at least `count` results are held, `deadline` passes or wake() is called.
  void wait_for(std::size_t count, std::chrono::steady_clock::time_point deadline);
  /// Wakes wait_for() callers (shutdown).
  void wake();

  /// Adds results dropped elsewhere (an upload given up) to the drop accounting.
  void add_dropped(uint64_t n);
  /// Drops counted since the previous call (ResultBatch.dropped_before); resets that count.
  uint64_t take_dropped_since_last();

  std::size_t size() const;
  std::size_t capacity() const { return capacity_; }
  /// Results dropped because the buffer was full, since start.
  uint64_t overflow_dropped() const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ProbeResult> items_;
  std::size_t wanted_ = 0;
  bool woken_ = false;
  uint64_t overflow_dropped_ = 0;
  uint64_t dropped_since_last_ = 0;
};

}  // namespace pingmesh::agent
