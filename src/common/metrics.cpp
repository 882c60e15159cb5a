#include "common/metrics.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>

namespace pingmesh::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::snapshot(std::vector<uint64_t>* cumulative, double* sum, uint64_t* count) const {
  cumulative->assign(bounds_.size() + 1, 0);
  uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    (*cumulative)[i] = acc;
  }
  *sum = sum_.load(std::memory_order_relaxed);
  *count = acc;
}

Registry::Series& Registry::series(const std::string& name, const std::string& type,
                                   const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& fam = families_[name];
  if (fam.type.empty()) {
    fam.type = type;
    fam.help = help;
  }
  for (auto& s : fam.series) {
    if (s->labels == labels) return *s;
  }
  fam.series.push_back(std::make_unique<Series>());
  fam.series.back()->labels = labels;
  return *fam.series.back();
}

Counter& Registry::counter(const std::string& name, const std::string& help,
                           const Labels& labels) {
  auto& s = series(name, "counter", help, labels);
  std::lock_guard lock(mu_);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  auto& s = series(name, "gauge", help, labels);
  std::lock_guard lock(mu_);
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const std::vector<double>& bounds, const Labels& labels) {
  auto& s = series(name, "histogram", help, labels);
  std::lock_guard lock(mu_);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(bounds);
  return *s.histogram;
}

void Registry::gauge_fn(const std::string& name, const std::string& help,
                        std::function<double()> fn, const Labels& labels) {
  auto& s = series(name, "gauge", help, labels);
  std::lock_guard lock(mu_);
  s.fn = std::move(fn);
}

namespace {
std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string label_text(const Labels& labels, const std::string& extra = {}) {
  if (labels.empty() && extra.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"" + escape(v) + "\"";
  }
  if (!extra.empty()) {
    if (!first) out += ",";
    out += extra;
  }
  out += "}";
  return out;
}

std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}
}  // namespace

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, fam] : families_) {
    out += "# HELP " + name + " " + fam.help + "\n";
    out += "# TYPE " + name + " " + fam.type + "\n";
    for (const auto& s : fam.series) {
      if (s->counter) {
        out += name + label_text(s->labels) + " " + num(s->counter->value()) + "\n";
      } else if (s->gauge) {
        out += name + label_text(s->labels) + " " + num(s->gauge->value()) + "\n";
      } else if (s->fn) {
        out += name + label_text(s->labels) + " " + num(s->fn()) + "\n";
      } else if (s->histogram) {
        std::vector<uint64_t> cum;
        double sum = 0;
        uint64_t count = 0;
        s->histogram->snapshot(&cum, &sum, &count);
        const auto& b = s->histogram->bounds();
        for (std::size_t i = 0; i <= b.size(); ++i) {
          std::string le = "le=\"" + (i < b.size() ? num(b[i]) : std::string("+Inf")) + "\"";
          out += name + "_bucket" + label_text(s->labels, le) + " " + std::to_string(cum[i]) + "\n";
        }
        out += name + "_sum" + label_text(s->labels) + " " + num(sum) + "\n";
        out += name + "_count" + label_text(s->labels) + " " + std::to_string(count) + "\n";
      }
    }
  }
  return out;
}

void register_process_metrics(Registry& registry) {
  static const double start_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  registry.gauge_fn("process_start_time_seconds", "Start time of the process since the epoch.",
                    [] { return start_time; });
  registry.gauge_fn("process_cpu_seconds_total", "User and system CPU time spent, seconds.", [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  });
  registry.gauge_fn("process_resident_memory_bytes", "Resident memory size in bytes.", [] {
    std::ifstream f("/proc/self/statm");
    long pages = 0, rss = 0;
    f >> pages >> rss;
    return static_cast<double>(rss) * static_cast<double>(sysconf(_SC_PAGESIZE));
  });
  registry.gauge_fn("process_open_fds", "Number of open file descriptors.", [] {
    int n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (readdir(d) != nullptr) ++n;
      closedir(d);
    }
    return static_cast<double>(std::max(0, n - 3));
  });
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

}  // namespace pingmesh::metrics
