// Analyzer costs at the simulator's default scale (4 DCs x 64 racks x 40 servers = 10,240
// servers, each probing its rack mates, the server in its slot of every other rack of its DC,
// and server 0 probing every rack of the other DCs; 10 s probes, 5 s batches):
//   BM_Observe   results/s through Engine::observe (what `pingmesh server` adds per batch)
//   BM_Evaluate  one evaluation (default rules + every detector) over full 60 s windows
// And the alert history file (SQLite, what `pingmesh server` keeps in data-dir/analyzer.db):
//   BM_AlertStorePut/N    one evaluation's N state changes written (one transaction)
//   BM_AlertStoreQuery/K  GET /api/v1/alerts on 100,000 stored alerts: K=0 newest 1,000, K=1
//                         one rule since a time (limit 100), K=2 a label filter (limit 100)
//   BM_AlertStoreOpen     start-up: prune + load the firing ones from 100,000 stored alerts
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "analyze/alert_store.hpp"
#include "analyze/engine.hpp"
#include "analyze/test_util.hpp"

namespace pingmesh::analyze {
namespace {

struct Fleet {
  testing::MiniNet net;
  /// Batches of two consecutive 5 s steps (every pair probed once).
  std::vector<std::vector<v1::ResultBatch>> steps;
  uint64_t results_per_cycle = 0;
  Fleet() {
    net.dcs = 4;
    net.racks = 64;
    net.servers = 40;
    for (int64_t t : {5000, 10000}) {
      auto& s = steps.emplace_back();
      net.send(t, [&](const v1::ResultBatch& b) {
        s.push_back(b);
        results_per_cycle += static_cast<uint64_t>(b.results_size());
      });
    }
  }
};

const Fleet& fleet() {
  static const Fleet f;
  return f;
}

Engine warmed(int64_t* now) {
  Engine e;
  std::vector<AlertEvent> events;
  e.set_rules(default_alert_rules(), 0, &events);
  const auto& f = fleet();
  for (int64_t t = 5000; t <= 60000; t += 5000) {
    for (const auto& b : f.steps[static_cast<std::size_t>(t / 5000) % 2]) e.observe(b, t);
    if (t % 10000 == 0) e.evaluate(t, &events);
  }
  *now = 60000;
  return e;
}

void BM_Observe(benchmark::State& state) {
  int64_t now = 0;
  Engine e = warmed(&now);
  const auto& f = fleet();
  uint64_t results = 0;
  for (auto _ : state) {
    now += 5000;
    for (const auto& b : f.steps[static_cast<std::size_t>(now / 5000) % 2]) {
      e.observe(b, now);
      results += static_cast<uint64_t>(b.results_size());
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(results));
  state.counters["servers"] = 10240;
}
BENCHMARK(BM_Observe)->Unit(benchmark::kMillisecond);

void BM_Evaluate(benchmark::State& state) {
  int64_t now = 0;
  Engine e = warmed(&now);
  std::vector<AlertEvent> events;
  for (auto _ : state) {
    events.clear();
    e.evaluate(++now, &events);  // a new time: nothing cached from the previous round
  }
  state.counters["alerts"] = static_cast<double>(e.alerts().active_count());
}
BENCHMARK(BM_Evaluate)->Unit(benchmark::kMillisecond);

/// A realistic alert (labels, summary, a verdict) with the given id and times.
Alert bench_alert(uint64_t id, int64_t start_ms, AlertState state) {
  Alert a;
  a.id = id;
  a.rule = id % 3 == 0 ? "rack-loss" : id % 3 == 1 ? "rack-p99" : "localization/server_down";
  a.scope = "rack";
  std::string rack = "dc" + std::to_string(id % 4) + "-r" + std::to_string(id % 64);
  a.fingerprint = a.rule + "|rack=" + rack;
  a.labels = {{"alertname", a.rule},
              {"severity", "warning"},
              {"rule", a.rule},
              {"dc", "dc" + std::to_string(id % 4)},
              {"rack", rack}};
  a.annotations = {{"summary", "rack " + rack + ": loss 0.0123 over 30 s (41 of 3333 probes)"},
                   {"description", "the paper's SLA"}};
  a.state = state;
  a.active_since_ms = start_ms;
  a.fired_ms = start_ms + 10000;
  a.resolved_ms = state == AlertState::kResolved ? start_ms + 70000 : 0;
  a.updated_ms = state == AlertState::kResolved ? a.resolved_ms : start_ms + 60000;
  a.value = 0.0123;
  a.threshold = 0.001;
  a.samples = 3333;
  a.verdicts = {"rack:dc1/" + rack};
  return a;
}

struct StoreFile {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("pm-bench-alerts-" + std::to_string(::getpid()) + ".db");
  StoreFile() { clear(); }
  ~StoreFile() { clear(); }
  void clear() {
    for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + ext);
  }
};

/// A store with 100,000 resolved alerts over 100 days and 100 firing ones.
std::unique_ptr<AlertStore> filled(const StoreFile& f) {
  auto store = open_sqlite_alert_store(f.path.string());
  const int64_t t0 = 1'700'000'000'000;
  std::vector<Alert> batch;
  for (uint64_t id = 1; id <= 100100; ++id) {
    bool firing = id > 100000;
    batch.push_back(bench_alert(id, t0 + static_cast<int64_t>(id) * 86400,
                                firing ? AlertState::kFiring : AlertState::kResolved));
    if (batch.size() == 5000) {
      store->put(batch);
      batch.clear();
    }
  }
  store->put(batch);
  return store;
}

void BM_AlertStorePut(benchmark::State& state) {
  StoreFile f;
  auto store = open_sqlite_alert_store(f.path.string());
  auto n = static_cast<uint64_t>(state.range(0));
  uint64_t id = 1;
  for (auto _ : state) {
    std::vector<Alert> batch;
    for (uint64_t i = 0; i < n; ++i) {
      batch.push_back(bench_alert(id, static_cast<int64_t>(id) * 1000, AlertState::kFiring));
      ++id;
    }
    store->put(batch);
  }
  state.SetItemsProcessed(static_cast<int64_t>(id - 1));
}
BENCHMARK(BM_AlertStorePut)->Arg(1)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

void BM_AlertStoreQuery(benchmark::State& state) {
  static StoreFile f;
  static auto store = filled(f);
  AlertQuery q;
  switch (state.range(0)) {
    case 0:
      q.limit = 1000;
      break;
    case 1:
      q.rule = "rack-p99";
      q.since_ms = 1'700'000'000'000 + 50000LL * 86400;
      q.limit = 100;
      break;
    default:
      q.labels = {{"rack", "dc1-r5"}};
      q.limit = 100;
      break;
  }
  std::size_t rows = 0;
  for (auto _ : state) rows = store->query(q).size();
  state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_AlertStoreQuery)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_AlertStoreOpen(benchmark::State& state) {
  StoreFile f;
  { filled(f); }
  AlertRetention keep_all;
  keep_all.max_age_ms = INT64_MAX / 2;
  keep_all.max_rows = 1'000'000;
  std::size_t active = 0;
  for (auto _ : state) {
    auto store = open_sqlite_alert_store(f.path.string());
    store->prune(keep_all, 1'800'000'000'000);
    active = store->load().active.size();
  }
  state.counters["firing"] = static_cast<double>(active);
}
BENCHMARK(BM_AlertStoreOpen)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pingmesh::analyze

BENCHMARK_MAIN();
