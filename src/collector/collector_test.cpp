#include "collector/collector.hpp"

#include <gtest/gtest.h>
#include <snappy.h>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/router.hpp"

namespace pingmesh::collector {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kT0 = 1'700'000'400;  // a multiple of 600 s (and of 60 s)

/// Results of one agent: `n` TCP probes to `peer` at `ts`, RTT rtt_us, `drops` of them DROP.
struct Probe {
  std::string src, src_dc, src_rack, dst, dst_dc, dst_rack;
  int n = 1;
  uint32_t rtt_us = 100;
  int drops = 0;
  int64_t ts_s = kT0;
};

v1::ResultBatch batch_of(const std::vector<Probe>& probes, uint64_t batch_id = 0) {
  v1::ResultBatch b;
  b.set_agent(probes.at(0).src);
  b.set_dc(probes[0].src_dc);
  b.set_rack(probes[0].src_rack);
  b.set_batch_id(batch_id);
  for (const auto& p : probes) {
    auto* peer = b.add_peers();
    peer->set_name(p.dst);
    peer->set_dc(p.dst_dc);
    peer->set_rack(p.dst_rack);
    for (int i = 0; i < p.n; ++i) {
      auto* r = b.add_results();
      r->set_peer(static_cast<uint32_t>(b.peers_size() - 1));
      r->set_timestamp_us(p.ts_s * 1'000'000 + i);
      r->set_protocol(v1::TCP);
      r->set_outcome(i < p.drops ? v1::DROP : v1::OK);
      r->set_rtt_us(i < p.drops ? 3'000'000 : p.rtt_us);
    }
  }
  return b;
}

std::string snappy_of(const v1::ResultBatch& b) {
  std::string raw = b.SerializeAsString(), out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

std::string gzip_of(const std::string& raw) {
  z_stream zs{};
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, raw.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

class CollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pingmesh_coll_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    now_us_ = (kT0 + 30) * 1'000'000;
  }
  void TearDown() override {
    server_.reset();
    collector_.reset();
    fs::remove_all(dir_);
  }
  CollectorOptions options(const std::string& dir = {}) {
    CollectorOptions o;
    o.data_dir = dir.empty() ? dir_.string() : dir;
    o.agent_token = "secret";
    o.clock_us = [this] { return now_us_.load(); };
    return o;
  }
  void open(CollectorOptions o, std::function<bool(std::string_view)> known = nullptr) {
    server_.reset();
    collector_.reset();
    collector_ = std::make_unique<Collector>(std::move(o), &registry_, std::move(known));
    router_ = http::Router();
    collector_->register_routes(router_);
    server_ = std::make_unique<http::Server>(
        http::ServerOptions{.address = "127.0.0.1", .port = 0, .threads = 2},
        [this](const http::Request& r) {
          http::Request copy = r;
          return router_.dispatch(copy);
        });
    server_->start();
  }
  std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  http::ClientResponse post(const std::string& body, const std::string& encoding = "snappy",
                            const std::string& token = "secret",
                            const std::string& type = "application/x-protobuf") {
    http::ClientRequest req;
    req.method = "POST";
    req.url = url("/api/v1/results");
    req.body = body;
    req.headers = {{"Content-Type", type}};
    if (!encoding.empty()) req.headers.emplace_back("Content-Encoding", encoding);
    if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
    return client_.perform(req);
  }
  json get(const std::string& path_and_query, int want_status = 200) {
    http::ClientRequest req;
    req.url = url(path_and_query);
    auto r = client_.perform(req);
    EXPECT_EQ(r.status, want_status) << path_and_query << ": " << r.body;
    return json::parse(r.body);
  }
  /// A small fleet: dc1 with racks r1 (a1, a2) and r2 (b1); dc2 with rack x1 (c1).
  void post_fleet(uint64_t id_base = 1) {
    std::vector<std::vector<Probe>> batches = {
        {{"a1", "dc1", "r1", "a2", "dc1", "r1", 10, 200, 0},
         {"a1", "dc1", "r1", "b1", "dc1", "r2", 100, 400, 1},
         {"a1", "dc1", "r1", "c1", "dc2", "x1", 10, 5000, 0}},
        {{"a2", "dc1", "r1", "a1", "dc1", "r1", 10, 220, 0},
         {"a2", "dc1", "r1", "b1", "dc1", "r2", 100, 450, 3}},
        {{"b1", "dc1", "r2", "a1", "dc1", "r1", 20, 600, 0}},
        {{"c1", "dc2", "x1", "a1", "dc1", "r1", 10, 5200, 0}},
    };
    uint64_t id = id_base;
    for (const auto& b : batches) {
      auto r = post(snappy_of(batch_of(b, id++)));
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
  std::string q(const std::string& extra) {
    return extra + "&from=" + std::to_string(kT0) + "&to=" + std::to_string(kT0 + 60);
  }

  fs::path dir_;
  std::atomic<int64_t> now_us_{0};
  metrics::Registry registry_;
  std::unique_ptr<Collector> collector_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  http::Client client_;
};

TEST_F(CollectorTest, IngestsSnappyBatchesAndAnswersMatrices) {
  open(options());
  post_fleet();
  // DC x DC, loss.
  json m = get("/api/v1/matrix?" + q("level=dc&metric=loss"));
  EXPECT_EQ(m["rows"], json({"dc1", "dc2"}));
  EXPECT_EQ(m["unit"], "ratio");
  EXPECT_DOUBLE_EQ(m["cells"][0][0]["value"].get<double>(), 4.0 / 240);
  EXPECT_EQ(m["cells"][0][0]["samples"], 240);
  EXPECT_EQ(m["cells"][1][1]["missing"], true);
  EXPECT_DOUBLE_EQ(m["cells"][1][0]["value"].get<double>(), 0);
  // Rack x rack inside dc1, p50.
  m = get("/api/v1/matrix?" + q("level=rack&dc=dc1&metric=p50"));
  EXPECT_EQ(m["rows"], json({"r1", "r2"}));
  EXPECT_EQ(m["unit"], "us");
  // Lower medians: 10 x 200 us and 10 x 220 us; 99 x 400 us and 97 x 450 us.
  EXPECT_NEAR(m["cells"][0][0]["value"].get<double>(), 200, 2);
  EXPECT_NEAR(m["cells"][0][1]["value"].get<double>(), 400, 4);
  EXPECT_NEAR(m["cells"][1][0]["value"].get<double>(), 600, 6);
  EXPECT_EQ(m["cells"][1][1]["missing"], true);
  // Server x server between r1 and r2, probe counts.
  m = get("/api/v1/matrix?" + q("level=server&dc=dc1&src_rack=r1&dst_rack=r2&metric=probes"));
  EXPECT_EQ(m["rows"], json({"a1", "a2"}));
  EXPECT_EQ(m["cols"], json({"b1"}));
  EXPECT_EQ(m["cells"][0][0]["value"], 100);
  EXPECT_EQ(m["cells"][1][0]["value"], 100);
  // Within one rack.
  m = get("/api/v1/matrix?" + q("level=server&dc=dc1&src_rack=r1&metric=max"));
  EXPECT_EQ(m["cells"][0][0]["missing"], true);
  EXPECT_EQ(m["cells"][0][1]["value"], 200);
  // Every server of dc1 against every other, grouped by rack (r1's servers, then r2's); c1
  // (dc2) is not in it although a1 probed it.
  m = get("/api/v1/matrix?" + q("level=server&dc=dc1&metric=probes"));
  EXPECT_EQ(m["rows"], json({"a1", "a2", "b1"}));
  EXPECT_EQ(m["cols"], m["rows"]);
  EXPECT_FALSE(m.contains("src_rack"));
  EXPECT_EQ(m["cells"][0][1]["value"], 10);   // a1 -> a2
  EXPECT_EQ(m["cells"][0][2]["value"], 100);  // a1 -> b1
  EXPECT_EQ(m["cells"][1][0]["value"], 10);   // a2 -> a1
  EXPECT_EQ(m["cells"][1][2]["value"], 100);  // a2 -> b1
  EXPECT_EQ(m["cells"][2][0]["value"], 20);   // b1 -> a1
  EXPECT_EQ(m["cells"][2][1]["missing"], true);
  EXPECT_EQ(m["cells"][2][2]["missing"], true);
  json e = get("/api/v1/matrix?" + q("level=server&dc=dc1&dst_rack=r2"), 400);
  EXPECT_EQ(e["field"], "src_rack");
}

TEST_F(CollectorTest, SeriesTopAndSla) {
  open(options());
  post_fleet();
  json s = get("/api/v1/series?scope=rack_pair&dc=dc1&src=r1&dst=r2&metric=loss&from=" +
               std::to_string(kT0 - 120) + "&to=" + std::to_string(kT0 + 60));
  ASSERT_EQ(s["points"].size(), 3u);
  EXPECT_EQ(s["step"], 60);
  EXPECT_EQ(s["points"][0]["missing"], true);
  EXPECT_EQ(s["points"][2]["t"], kT0);
  EXPECT_DOUBLE_EQ(s["points"][2]["value"].get<double>(), 4.0 / 200);
  s = get("/api/v1/series?" + q("scope=pair&src=a1&dst=c1&metric=p99"));
  EXPECT_NEAR(s["points"][0]["value"].get<double>(), 5000, 50);
  s = get("/api/v1/series?" + q("scope=server&src=a1&direction=dst&metric=probes"));
  EXPECT_EQ(s["points"][0]["value"], 40);
  s = get("/api/v1/series?" + q("scope=dc&src=dc1&metric=probes"));
  EXPECT_EQ(s["points"][0]["value"], 240);

  json t = get("/api/v1/top?" + q("level=pair&metric=loss&n=2"));
  ASSERT_EQ(t["items"].size(), 2u);
  EXPECT_EQ(t["items"][0]["src"], "a2");
  EXPECT_EQ(t["items"][0]["dst"], "b1");
  EXPECT_DOUBLE_EQ(t["items"][0]["value"].get<double>(), 0.03);
  EXPECT_EQ(t["items"][1]["src"], "a1");
  t = get("/api/v1/top?" + q("level=rack_pair&metric=p99&n=1"));
  EXPECT_EQ(t["items"][0]["src"], "x1");  // 5.2 ms from dc2 to dc1
  EXPECT_EQ(t["items"][0]["src_dc"], "dc2");
  EXPECT_EQ(t["items"][0]["dst_dc"], "dc1");

  json sla = get("/api/v1/sla?" + q("dc=dc1"));
  ASSERT_EQ(sla["dcs"].size(), 1u);
  EXPECT_EQ(sla["dcs"][0]["dc"], "dc1");
  EXPECT_EQ(sla["dcs"][0]["probes"], 240);
  EXPECT_EQ(sla["dcs"][0]["ok"], false);  // 1.7 % loss > 0.1 %
  ASSERT_EQ(sla["racks"].size(), 2u);
  EXPECT_EQ(sla["racks"][0]["rack"], "r1");
  EXPECT_EQ(sla["racks"][0]["probes"], 220);  // intra-DC probes from r1
  EXPECT_EQ(sla["racks"][1]["ok"], true);
}

TEST_F(CollectorTest, BadParametersAnswer400WithTheField) {
  open(options());
  post_fleet();
  EXPECT_EQ(get("/api/v1/matrix?level=pod", 400)["field"], "level");
  EXPECT_EQ(get("/api/v1/matrix?level=rack", 400)["field"], "dc");
  EXPECT_EQ(get("/api/v1/matrix?level=rack&dc=nowhere", 404)["field"], "dc");
  EXPECT_EQ(get("/api/v1/matrix?metric=p42", 400)["field"], "metric");
  EXPECT_EQ(get("/api/v1/matrix?from=abc", 400)["field"], "from");
  EXPECT_EQ(get("/api/v1/matrix?from=200&to=100", 400)["field"], "from");
  EXPECT_EQ(get("/api/v1/matrix?protocol=sctp", 400)["field"], "protocol");
  EXPECT_EQ(get("/api/v1/series?scope=pair&src=a1&dst=a2&step=61", 400)["field"], "step");
  EXPECT_EQ(get("/api/v1/series?scope=galaxy&src=a1", 400)["field"], "scope");
  EXPECT_EQ(get("/api/v1/top?n=0", 400)["field"], "n");
}

TEST_F(CollectorTest, AuthenticatesAgents) {
  open(options());
  auto body = snappy_of(batch_of({{"a1", "dc1", "r1", "a2", "dc1", "r1"}}));
  EXPECT_EQ(post(body, "snappy", "").status, 401);
  EXPECT_EQ(post(body, "snappy", "wrong").status, 401);
  EXPECT_EQ(post(body, "snappy", "secret").status, 200);
  auto o = options();
  o.agent_token.clear();
  open(o);
  EXPECT_EQ(post(body, "snappy", "").status, 200);  // no token configured: accepted (warned)
  EXPECT_NE(registry_.render().find("pingmesh_collector_batches_total{outcome=\"unauthorized\"} 2"),
            std::string::npos);
}

TEST_F(CollectorTest, AcceptsGzipIdentityAndJson) {
  open(options());
  auto b = batch_of({{"a1", "dc1", "r1", "a2", "dc1", "r1", 3}});
  EXPECT_EQ(post(gzip_of(b.SerializeAsString()), "gzip").status, 200);
  EXPECT_EQ(post(b.SerializeAsString(), "").status, 200);
  std::string js = R"({"agent":"a1","dc":"dc1","rack":"r1","peers":[{"name":"a2","dc":"dc1",
    "rack":"r1"}],"results":[{"peer":0,"timestampUs":")" + std::to_string(kT0 * 1'000'000) +
                   R"(","protocol":"TCP","outcome":"OK","rttUs":100}]})";
  auto r = post(js, "", "secret", "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["accepted"], 1);
  EXPECT_EQ(post("not json", "", "secret", "application/json").status, 400);
  EXPECT_EQ(post("garbage", "snappy").status, 400);
  EXPECT_EQ(post("x", "br").status, 415);
  json m = get("/api/v1/matrix?" + q("level=dc&metric=probes"));
  EXPECT_EQ(m["cells"][0][0]["value"], 7);
}

TEST_F(CollectorTest, DeduplicatesRetriedBatches) {
  open(options());
  auto body = snappy_of(batch_of({{"a1", "dc1", "r1", "a2", "dc1", "r1", 5}}, 42));
  auto r1 = post(body);
  auto r2 = post(body);
  ASSERT_EQ(r1.status, 200);
  ASSERT_EQ(r2.status, 200);
  EXPECT_EQ(json::parse(r1.body)["duplicate"], false);
  EXPECT_EQ(json::parse(r2.body)["duplicate"], true);
  EXPECT_EQ(get("/api/v1/matrix?" + q("level=dc&metric=probes"))["cells"][0][0]["value"], 5);
  // Another agent may use the same batch id.
  post(snappy_of(batch_of({{"a2", "dc1", "r1", "a1", "dc1", "r1", 5}}, 42)));
  EXPECT_EQ(get("/api/v1/matrix?" + q("level=dc&metric=probes"))["cells"][0][0]["value"], 10);
}

TEST_F(CollectorTest, RejectsUnknownServersAndCountsReasons) {
  open(options(), [](std::string_view name) { return name != "intruder"; });
  auto r = post(snappy_of(batch_of({{"intruder", "dc1", "r1", "a2", "dc1", "r1", 4}})));
  EXPECT_EQ(r.status, 403);
  auto b = batch_of({{"a1", "dc1", "r1", "a2", "dc1", "r1", 2}});
  b.mutable_results(0)->set_rtt_us(70'000'000);
  b.mutable_results(1)->set_timestamp_us((kT0 - 3600) * 1'000'000);
  r = post(snappy_of(b));
  ASSERT_EQ(r.status, 200);
  json j = json::parse(r.body);
  EXPECT_EQ(j["accepted"], 0);
  EXPECT_EQ(j["rejected"]["rtt_absurd"], 1);
  EXPECT_EQ(j["rejected"]["too_old"], 1);
  std::string text = registry_.render();
  EXPECT_NE(text.find("pingmesh_collector_results_rejected_total{reason=\"unknown_server\"} 4"),
            std::string::npos);
  EXPECT_NE(text.find("pingmesh_collector_results_rejected_total{reason=\"too_old\"} 1"),
            std::string::npos);
}

TEST_F(CollectorTest, BackPressureAnswers429WithRetryAfter) {
  auto o = options();
  o.max_inflight_bytes = 10;
  open(o);
  auto r = post(snappy_of(batch_of({{"a1", "dc1", "r1", "a2", "dc1", "r1", 20}})));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "1");
}

TEST_F(CollectorTest, StoresRollsUpAndAnswersTheSameFromTheStore) {
  open(options());
  post_fleet();
  json live = get("/api/v1/matrix?" + q("level=rack&dc=dc1&metric=p99"));
  // Data in a second 10-minute window too.
  now_us_ = (kT0 + 630) * 1'000'000;
  auto later = batch_of({{"a1", "dc1", "r1", "b1", "dc1", "r2", 50, 800, 5, kT0 + 620}}, 99);
  ASSERT_EQ(post(snappy_of(later)).status, 200);
  now_us_ = (kT0 + 1800) * 1'000'000;
  for (int i = 0; i < 5; ++i) collector_->tick();
  EXPECT_EQ(collector_->flushed_until(), kT0 + 1800 - 120);
  json stored = get("/api/v1/matrix?" + q("level=rack&dc=dc1&metric=p99"));
  EXPECT_EQ(stored["cells"], live["cells"]);
  // A 20-minute range is answered from two 10-minute roll-ups and matches the minute tiles.
  std::string range = "&from=" + std::to_string(kT0) + "&to=" + std::to_string(kT0 + 1200);
  json m = get("/api/v1/matrix?level=rack&dc=dc1&metric=loss" + range);
  EXPECT_DOUBLE_EQ(m["cells"][0][1]["value"].get<double>(), 9.0 / 250);
  json s = get("/api/v1/series?scope=rack_pair&dc=dc1&src=r1&dst=r2&metric=probes&step=600" +
               range);
  ASSERT_EQ(s["points"].size(), 2u);
  EXPECT_EQ(s["points"][0]["value"], 200);
  EXPECT_EQ(s["points"][1]["value"], 50);
  EXPECT_NE(registry_.render().find("pingmesh_collector_rollups_total 2"), std::string::npos);
}

TEST_F(CollectorTest, ReplaysTheWalAfterACrash) {
  open(options());
  post_fleet();
  json before = get("/api/v1/matrix?" + q("level=rack&dc=dc1&metric=p99"));
  // Every acknowledged batch is on disk now: a copy of the directory is what a kill -9 leaves.
  fs::path crashed = dir_.string() + "_crash";
  fs::remove_all(crashed);
  fs::copy(dir_, crashed, fs::copy_options::recursive);
  open(options(crashed.string()));
  EXPECT_EQ(collector_->replayed(), 4u);
  EXPECT_EQ(get("/api/v1/matrix?" + q("level=rack&dc=dc1&metric=p99"))["cells"], before["cells"]);
  // The replay also restores deduplication.
  auto again = post(snappy_of(batch_of({{"c1", "dc2", "x1", "a1", "dc1", "r1", 10, 5200, 0}}, 4)));
  EXPECT_EQ(json::parse(again.body)["duplicate"], true);
  // After the windows are stored the WAL is released and a restart replays nothing.
  now_us_ = (kT0 + 600) * 1'000'000;
  collector_->tick();
  open(options(crashed.string()));
  EXPECT_EQ(collector_->replayed(), 0u);
  EXPECT_EQ(get("/api/v1/matrix?" + q("level=rack&dc=dc1&metric=p99"))["cells"], before["cells"]);
  server_.reset();
  collector_.reset();
  fs::remove_all(crashed);
}

TEST_F(CollectorTest, RetentionDeletesExpiredTiles) {
  auto o = options();
  o.retention = {.minute_s = 3600, .ten_minutes_s = 7200, .hour_s = 86400, .day_s = 86400 * 30};
  o.retention_batch = 1;  // forces several small deletes
  open(o);
  post_fleet();
  now_us_ = (kT0 + 600) * 1'000'000;
  collector_->tick();
  json m = get("/api/v1/matrix?" + q("level=dc&metric=probes"));
  EXPECT_EQ(m["cells"][0][0]["value"], 240);
  now_us_ = (kT0 + 3600 + 120) * 1'000'000;
  collector_->tick();
  m = get("/api/v1/matrix?" + q("level=dc&metric=probes"));
  EXPECT_EQ(m["cells"][0][0]["missing"], true);  // the minute tile expired
  m = get("/api/v1/matrix?level=dc&metric=probes&from=" + std::to_string(kT0) +
          "&to=" + std::to_string(kT0 + 600));
  EXPECT_EQ(m["cells"][0][0]["value"], 240);  // the 10-minute roll-up is kept longer
}

}  // namespace
}  // namespace pingmesh::collector
