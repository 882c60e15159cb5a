// Collector benchmarks: in-process decode + aggregate throughput (results/s), the full ingest
// path with the fsynced WAL, over HTTP on loopback, and matrix query latency over one hour of a
// 100,000-server topology (20 DCs x 125 racks x 40 servers).
//
//   build-bench/bench/collector/collector_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <snappy.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "batches.hpp"
#include "collector/collector.hpp"
#include "collector/remote_write.hpp"
#include "common/router.hpp"

namespace pc = pingmesh::collector;
namespace v1 = pingmesh::v1;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kStart = 1'700'000'400;  // a multiple of 600

/// Snappy-compressed batches of `agents` agents (batches.hpp), each probing `peers` peers once.
std::vector<std::string> make_batches(int agents, int peers, int64_t ts_s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  for (int a = 0; a < agents; ++a) {
    auto b = pingmesh::bench::make_batch(a, agents, peers, ts_s,
                                         seed * 1'000'000 + static_cast<uint64_t>(a), rng);
    std::string raw = b.SerializeAsString(), z;
    snappy::Compress(raw.data(), raw.size(), &z);
    out.push_back(std::move(z));
  }
  return out;
}

fs::path temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("pingmesh_bench_" + name + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

/// Decode (snappy + the wire parser, as ingest does) and aggregate, one thread: the CPU per
/// result of the pure path.
void BM_DecodeAggregate(benchmark::State& state) {
  const int agents = 1000, peers = static_cast<int>(state.range(0));
  auto batches = make_batches(agents, peers, kStart + 10, 1);
  pc::Names names;
  pc::Aggregator agg({.window_s = 60, .grace_s = 3600}, &names);
  pc::DecodedBatch decoded;
  std::size_t i = 0;
  int64_t results = 0;
  std::string error;
  // Warm-up (not timed): one batch per agent, so the pair cells exist as in a steady state.
  for (const auto& b : batches) {
    if (decoded.decode(b, pc::BodyFormat::kSnappy, &error)) {
      agg.add(decoded.view, (kStart + 30) * 1'000'000);
    }
  }
  for (auto _ : state) {
    if (!decoded.decode(batches[i], pc::BodyFormat::kSnappy, &error)) {
      state.SkipWithError(error.c_str());
      break;
    }
    results += static_cast<int64_t>(agg.add(decoded.view, (kStart + 30) * 1'000'000).accepted);
    i = (i + 1) % batches.size();
  }
  state.counters["results/s"] =
      benchmark::Counter(static_cast<double>(results), benchmark::Counter::kIsRate);
  state.counters["ns/result"] = benchmark::Counter(
      static_cast<double>(results), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["live_aggregates"] = static_cast<double>(agg.cell_count());
}
BENCHMARK(BM_DecodeAggregate)->Arg(500)->Arg(2500)->Unit(benchmark::kMicrosecond);

/// Remote-write export of one closed window, as the exporter's thread does it: map the window's
/// aggregates to samples (SeriesMapper, counters tracked across windows), encode WriteRequests of
/// 5,000 samples and snappy-compress them. 4,000 servers (4 DCs x 25 racks) x 100 peers over TCP;
/// arg 0: DC-pair and rack-pair series (the default), arg 1: server pairs too
/// (--remote-write-pairs). The HTTP POST is not included.
void BM_RemoteWriteExport(benchmark::State& state) {
  const bool pairs = state.range(0) != 0;
  const int agents = 4000, peers = 100;
  auto batches = make_batches(agents, peers, kStart + 10, 7);
  pc::Names names;
  pc::Aggregator agg({.window_s = 60, .grace_s = 3600}, &names);
  pc::DecodedBatch decoded;
  std::string error;
  for (const auto& b : batches) {
    if (decoded.decode(b, pc::BodyFormat::kSnappy, &error)) {
      agg.add(decoded.view, (kStart + 30) * 1'000'000);
    }
  }
  auto windows = agg.close_all();
  if (windows.size() != 1) {
    state.SkipWithError("expected one window");
    return;
  }
  pc::SeriesMapper mapper(pairs, {{"cluster", "bench"}});
  pc::WriteRequestEncoder encoder;
  int64_t samples = 0, bytes = 0;
  for (auto _ : state) {
    auto flush = [&] {
      auto z = pc::snappy_compress(encoder.take());
      bytes += static_cast<int64_t>(z.size());
      benchmark::DoNotOptimize(z);
    };
    samples += static_cast<int64_t>(
        mapper.map(*windows.front(), 60, names, [&](auto labels, double v, int64_t ts) {
          encoder.add(labels, v, ts);
          if (encoder.samples() >= 5000) flush();
        }));
    if (encoder.samples() > 0) flush();
  }
  state.counters["samples/window"] =
      static_cast<double>(samples) / static_cast<double>(state.iterations());
  state.counters["ns/sample"] = benchmark::Counter(
      static_cast<double>(samples), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes/sample"] = static_cast<double>(bytes) / static_cast<double>(samples);
}
BENCHMARK(BM_RemoteWriteExport)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

/// Decode only (snappy + the wire parser): the share of the pure path spent decoding.
void BM_Decode(benchmark::State& state) {
  auto batches = make_batches(100, 2500, kStart + 10, 1);
  pc::DecodedBatch decoded;
  std::size_t i = 0;
  int64_t results = 0;
  std::string error;
  for (auto _ : state) {
    if (!decoded.decode(batches[i], pc::BodyFormat::kSnappy, &error)) {
      state.SkipWithError(error.c_str());
      break;
    }
    results += static_cast<int64_t>(decoded.view.results.size());
    i = (i + 1) % batches.size();
  }
  state.counters["ns/result"] = benchmark::Counter(
      static_cast<double>(results), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMicrosecond);

/// For comparison: snappy + protobuf's own parser on an arena (what JSON-free ingest used
/// before the wire parser, and what on_accepted consumers still get).
void BM_DecodeProtobuf(benchmark::State& state) {
  auto batches = make_batches(100, 2500, kStart + 10, 1);
  std::size_t i = 0;
  int64_t results = 0;
  std::string error;
  for (auto _ : state) {
    google::protobuf::Arena arena;
    auto* b = google::protobuf::Arena::CreateMessage<v1::ResultBatch>(&arena);
    if (!pc::decode_batch(batches[i], pc::BodyFormat::kSnappy, b, &error)) {
      state.SkipWithError(error.c_str());
      break;
    }
    results += b->results_size();
    i = (i + 1) % batches.size();
  }
  state.counters["ns/result"] = benchmark::Counter(
      static_cast<double>(results), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_DecodeProtobuf)->Unit(benchmark::kMicrosecond);

/// The full in-process ingest path (decode, dedup, aggregate, WAL append with group commit and
/// fdatasync) from `threads` concurrent callers, as the HTTP handlers run it. Every call carries a
/// fresh batch_id (so none is a cheap duplicate). Counter: all threads' accepted results over the
/// wall time of the run. (End to end over HTTP, with a separate client process: compare.sh.)
void BM_IngestWithWal(benchmark::State& state) {
  static std::unique_ptr<pc::Collector> coll;
  static std::vector<pingmesh::bench::SnappyBody> bodies;
  static std::atomic<uint64_t> next{0}, accepted{0};
  if (state.thread_index() == 0) {
    auto dir = temp_dir("ingest");
    pc::CollectorOptions o;
    o.data_dir = dir.string();
    o.windows.grace_s = 3600;
    o.clock_us = [] { return (kStart + 30) * 1'000'000; };
    coll = std::make_unique<pc::Collector>(o, nullptr, nullptr);
    std::mt19937_64 rng(2);
    bodies.clear();
    for (int a = 0; a < 1000; ++a) {
      auto b = pingmesh::bench::make_batch(a, 1000, 2500, kStart + 10, 0, rng);
      bodies.push_back(pingmesh::bench::SnappyBody::of(b.SerializeAsString(), 2500));
    }
    // Warm-up (not timed): one batch per agent, so the pair cells exist as in a steady state.
    for (std::size_t a = 0; a < bodies.size(); ++a) {
      coll->ingest_body(bodies[a].with_batch_id(a + 1), pc::BodyFormat::kSnappy);
    }
    next = bodies.size();
    accepted = 0;
  }
  std::chrono::steady_clock::time_point t0;
  bool first = true;
  std::string body;
  for (auto _ : state) {
    if (first && state.thread_index() == 0) t0 = std::chrono::steady_clock::now();
    first = false;
    uint64_t k = next.fetch_add(1);
    body = bodies[k % bodies.size()].with_batch_id(k + 1);
    auto st = coll->ingest_body(body, pc::BodyFormat::kSnappy);
    accepted.fetch_add(st.counts.accepted);
  }
  if (state.thread_index() == 0) {
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.counters["total_results/s"] = static_cast<double>(accepted.load()) / wall;
    coll.reset();
    fs::remove_all(temp_dir("ingest"));
  }
}
BENCHMARK(BM_IngestWithWal)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime()
    ->MinTime(2)
    ->Unit(benchmark::kMillisecond);

/// One hour of stored data for a 100,000-server topology: 20 DCs x 125 racks (x 40 servers).
/// Every intra-DC rack pair gets 240 probes a minute (server i of rack x -> server i of rack y,
/// every 10 s); rack-pair minute tiles are written for dc0 and dc1 (a DC's rack matrix reads only
/// its own tiles), DC-pair tiles for all DCs; the collector then rolls them up.
struct QueryFixture {
  static constexpr int kDcs = 20, kRacks = 125;
  fs::path dir = temp_dir("query");
  std::unique_ptr<pc::Collector> coll;
  int64_t end_s = kStart + 3600 + 420;  // "now": the last hour is not aligned to 10 minutes

  QueryFixture() {
    std::mt19937_64 rng(9);
    std::vector<pc::Stats> pool(64);  // distinct rack-pair minutes, reused (generation speed)
    for (auto& s : pool) {
      std::lognormal_distribution<double> rtt(std::log(200.0 + 100.0 * (rng() % 5)), 0.35);
      for (int i = 0; i < 240; ++i) {
        double v = rtt(rng);
        s.add(pc::Protocol::kTcp, i == 0 && rng() % 4 == 0 ? pc::Outcome::kDrop : pc::Outcome::kOk,
              static_cast<uint32_t>(v), pc::Sketch::index_of(v));
      }
    }
    std::vector<pc::NameRow> names;
    uint32_t rack_id = 1;
    std::vector<std::vector<uint32_t>> racks(kDcs);
    for (uint32_t d = 1; d <= kDcs; ++d) {
      names.push_back({pc::NameKind::kDc, d, "dc" + std::to_string(d - 1), 0, 0});
      for (int r = 0; r < kRacks; ++r, ++rack_id) {
        names.push_back({pc::NameKind::kRack, rack_id, "rack" + std::to_string(r), d, d});
        racks[d - 1].push_back(rack_id);
      }
    }
    {
      fs::create_directories(dir);
      auto store = pc::open_sqlite_store((dir / "collector.db").string());
      for (int64_t m = 0; m < 60 + 7; ++m) {
        int64_t t = kStart + m * 60;
        std::vector<pc::Tile> tiles;
        pc::Cells dcp;
        for (uint32_t d = 1; d <= kDcs; ++d) {
          for (uint32_t e = 1; e <= kDcs; ++e) {
            dcp.merge({d, e, 2, 0}, 0, pool[(d * 31 + e + m) % pool.size()]);
          }
        }
        std::vector<uint32_t> all(dcp.size());
        for (uint32_t c = 0; c < dcp.size(); ++c) all[c] = c;
        tiles.push_back({{pc::Level::kDcPair, 0, 60, t}, pc::encode_tile(dcp, all)});
        for (uint32_t d = 1; d <= 2; ++d) {
          pc::Cells cells;
          for (uint32_t x : racks[d - 1]) {
            for (uint32_t y : racks[d - 1]) {
              cells.merge({x, y, 2, 0}, d, pool[(x * 7 + y * 13 + m) % pool.size()]);
            }
          }
          std::vector<uint32_t> list(cells.size());
          for (uint32_t c = 0; c < cells.size(); ++c) list[c] = c;
          tiles.push_back({{pc::Level::kRackPair, d, 60, t}, pc::encode_tile(cells, list)});
        }
        std::vector<std::pair<std::string, int64_t>> meta{{"flushed_until", t + 60}};
        if (m == 0) {
          for (int64_t g : {600, 3600, 86400}) {
            meta.emplace_back("rolled_until_" + std::to_string(g), kStart / g * g);
          }
        }
        store->write(tiles, m == 0 ? names : std::vector<pc::NameRow>{}, meta);
      }
    }
    pc::CollectorOptions o;
    o.data_dir = dir.string();
    o.clock_us = [this] { return end_s * 1'000'000; };
    coll = std::make_unique<pc::Collector>(o, nullptr, nullptr);
    for (int i = 0; i < 20; ++i) coll->tick();  // roll-ups: one window per granularity per tick
  }
  ~QueryFixture() {
    coll.reset();
    fs::remove_all(dir);
  }
};

QueryFixture& query_fixture() {
  static QueryFixture f;
  return f;
}

/// Runs a query handler per iteration; counters: the median and p99 latency of the iterations.
void run_query(benchmark::State& state, bool series, const std::string& query) {
  auto& f = query_fixture();
  pingmesh::http::Request req;
  req.method = "GET";
  req.path = series ? "/api/v1/series" : "/api/v1/matrix";
  req.query = query + "&from=" + std::to_string(f.end_s - 3600) + "&to=" + std::to_string(f.end_s);
  std::size_t bytes = 0;
  std::vector<double> ms;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = series ? f.coll->handle_series(req) : f.coll->handle_matrix(req);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (r.status != 200) {
      state.SkipWithError(r.body.c_str());
      break;
    }
    bytes = r.body.size();
  }
  std::sort(ms.begin(), ms.end());
  if (!ms.empty()) {
    state.counters["median_ms"] = ms[ms.size() / 2];
    state.counters["p99_ms"] = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  }
  state.counters["response_bytes"] = static_cast<double>(bytes);
}

void BM_MatrixRack1h(benchmark::State& state) {
  run_query(state, false,
            state.range(0) ? "level=rack&dc=dc0&metric=p99" : "level=rack&dc=dc0&metric=loss");
}
BENCHMARK(BM_MatrixRack1h)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->MinTime(3);

void BM_MatrixDc1h(benchmark::State& state) { run_query(state, false, "level=dc&metric=p99"); }
BENCHMARK(BM_MatrixDc1h)->Unit(benchmark::kMillisecond)->MinTime(3);

void BM_SeriesRackPair1h(benchmark::State& state) {
  run_query(state, true, "scope=rack_pair&dc=dc0&src=rack62&dst=rack77&metric=p99");
}
BENCHMARK(BM_SeriesRackPair1h)->Unit(benchmark::kMillisecond)->MinTime(3);

void BM_SeriesDcPair1h(benchmark::State& state) {
  run_query(state, true, "scope=dc_pair&src=dc0&dst=dc7&metric=p99");
}
BENCHMARK(BM_SeriesDcPair1h)->Unit(benchmark::kMillisecond)->MinTime(3);

}  // namespace

BENCHMARK_MAIN();
