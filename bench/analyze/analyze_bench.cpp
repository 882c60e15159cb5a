// Analyzer costs at the simulator's default scale (4 DCs x 64 racks x 40 servers = 10,240
// servers, each probing its rack mates, the server in its slot of every other rack of its DC,
// and server 0 probing every rack of the other DCs; 10 s probes, 5 s batches):
//   BM_Observe   results/s through Engine::observe (what `pingmesh server` adds per batch)
//   BM_Evaluate  one evaluation (default rules + every detector) over full 60 s windows
#include <benchmark/benchmark.h>

#include <vector>

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

}  // namespace
}  // namespace pingmesh::analyze

BENCHMARK_MAIN();
