#pragma once
/// A small Prometheus registry (text exposition format 0.0.4). Counters and gauges are lock-free
/// atomics; families with labels are created once and then updated without locks.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pingmesh::metrics {

/// A monotonically increasing counter.
class Counter {
 public:
  void inc(double v = 1) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// A value that goes up and down.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// A cumulative histogram with fixed upper bounds (seconds or bytes, as its name says).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  /// Snapshot: cumulative counts per bound (last = +Inf), sum and count.
  void snapshot(std::vector<uint64_t>* cumulative, double* sum, uint64_t* count) const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

/// Label set, as ordered name=value pairs.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// Holds metric families and renders them. Thread-safe.
class Registry {
 public:
  /// Returns the counter of this family and label set, creating it on first use.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& bounds, const Labels& labels = {});
  /// A gauge whose value is computed at scrape time.
  void gauge_fn(const std::string& name, const std::string& help, std::function<double()> fn,
                const Labels& labels = {});
  /// Renders every family in the text exposition format.
  std::string render() const;

 private:
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> fn;
  };
  struct Family {
    std::string type;
    std::string help;
    std::vector<std::unique_ptr<Series>> series;
  };
  Series& series(const std::string& name, const std::string& type, const std::string& help,
                 const Labels& labels);
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

/// Adds process metrics (CPU seconds, resident memory, open fds, start time) computed at scrape.
void register_process_metrics(Registry& registry);

/// Exponential bucket bounds: start, start*factor, ... (count values).
std::vector<double> exponential_buckets(double start, double factor, int count);

}  // namespace pingmesh::metrics
