#include "agent/result_buffer.hpp"

#include <algorithm>
#include <utility>

namespace pingmesh::agent {

ResultBuffer::ResultBuffer(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

std::size_t ResultBuffer::push(std::vector<ProbeResult>* results) {
  std::size_t dropped = 0;
  bool notify = false;
  {
    std::lock_guard lock(mu_);
    for (auto& r : *results) {
      if (items_.size() >= capacity_) {
        items_.pop_front();
        ++dropped;
      }
      items_.push_back(std::move(r));
    }
    overflow_dropped_ += dropped;
    dropped_since_last_ += dropped;
    notify = wanted_ > 0 && items_.size() >= wanted_;
  }
  results->clear();
  if (notify) cv_.notify_all();
  return dropped;
}

std::vector<ProbeResult> ResultBuffer::take(std::size_t max) {
  std::lock_guard lock(mu_);
  std::size_t n = std::min(max, items_.size());
  std::vector<ProbeResult> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(std::move(items_.front()));
    items_.pop_front();
  }
  if (items_.empty()) items_.shrink_to_fit();
  return out;
}

void ResultBuffer::wait_for(std::size_t count, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  wanted_ = std::max<std::size_t>(count, 1);
  cv_.wait_until(lock, deadline, [&] { return woken_ || items_.size() >= wanted_; });
  wanted_ = 0;
  woken_ = false;
}

void ResultBuffer::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void ResultBuffer::add_dropped(uint64_t n) {
  std::lock_guard lock(mu_);
  dropped_since_last_ += n;
}

uint64_t ResultBuffer::take_dropped_since_last() {
  std::lock_guard lock(mu_);
  return std::exchange(dropped_since_last_, 0);
}

std::size_t ResultBuffer::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

uint64_t ResultBuffer::overflow_dropped() const {
  std::lock_guard lock(mu_);
  return overflow_dropped_;
}

}  // namespace pingmesh::agent
