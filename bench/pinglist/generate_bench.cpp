// Generation of every pinglist of a large topology (default 10 DCs x 100 racks x 100 servers =
// 100,000 servers): the plan and every server's version (what a controller does on each change),
// and rendering all pinglists as XML. Reports wall time per step and the peak RSS.
//
//   build/bench/pinglist/pinglist_generate_bench [dcs racks servers]
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>

#include "model/pinglist.hpp"
#include "pinglist/generator.hpp"
#include "pinglist/test_topology.hpp"

using namespace pingmesh;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}
}  // namespace

int main(int argc, char** argv) {
  int dcs = argc > 3 ? std::atoi(argv[1]) : 10;
  int racks = argc > 3 ? std::atoi(argv[2]) : 100;
  int servers = argc > 3 ? std::atoi(argv[3]) : 100;
  auto t0 = std::chrono::steady_clock::now();
  auto topo = std::make_shared<const model::Topology>(
      pinglist::testing::make_topology(dcs, racks, servers));
  double build_s = seconds_since(t0);
  long rss_topology = peak_rss_kb();
  auto alive = pinglist::liveness_at(*topo, 1000);

  // Best of 3 generations (a controller regenerates on every change).
  double best = 1e9;
  uint64_t entries = 0;
  std::unique_ptr<pinglist::Plan> plan;
  for (int i = 0; i < 3; ++i) {
    auto t1 = std::chrono::steady_clock::now();
    plan = std::make_unique<pinglist::Plan>(pinglist::generate(topo, alive));
    best = std::min(best, seconds_since(t1));
  }
  for (auto c : plan->entry_count) entries += c;
  long rss_plan = peak_rss_kb();

  auto t2 = std::chrono::steady_clock::now();
  std::size_t bytes = 0;
  for (uint32_t k = 0; k < plan->servers.size(); ++k) {
    bytes += model::to_xml(pinglist::pinglist_of(*plan, k)).size();
  }
  double render_s = seconds_since(t2);

  fmt::print("servers={} dcs={} racks/dc={} servers/rack={}\n", plan->servers.size(), dcs, racks,
             servers);
  fmt::print("topology build: {:.3f} s, peak RSS after build {} MB\n", build_s,
             rss_topology / 1024);
  fmt::print("generate (plan + all versions): best of 3 = {:.3f} s, {} entries ({:.1f}/server)\n",
             best, entries, static_cast<double>(entries) / plan->servers.size());
  fmt::print("peak RSS after generation: {} MB (+{} MB for the plans)\n", rss_plan / 1024,
             (rss_plan - rss_topology) / 1024);
  fmt::print("render every pinglist as XML: {:.3f} s, {:.1f} MB, {:.1f} us/pinglist\n", render_s,
             bytes / 1e6, render_s * 1e6 / plan->servers.size());
  return 0;
}
