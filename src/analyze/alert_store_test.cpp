#include "analyze/alert_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "analyze/analyzer.hpp"
#include "analyze/test_util.hpp"

namespace pingmesh::analyze {
namespace {

using nlohmann::json;

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("pm-alert-store-" + std::to_string(::getpid()) + "-" +
            std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const char* name) const { return (path / name).string(); }
};

Alert make_alert(uint64_t id, const std::string& rule, AlertState state, int64_t start_ms,
                 int64_t end_ms) {
  Alert a;
  a.id = id;
  a.rule = rule;
  a.scope = "rack";
  a.fingerprint = rule + "|rack=dc1/r" + std::to_string(id);
  a.labels = {{"alertname", rule},
              {"severity", id % 2 ? "critical" : "warning"},
              {"dc", "dc1"},
              {"rack", "r" + std::to_string(id)}};
  a.annotations = {{"summary", "rack r" + std::to_string(id) + " loses 1.2 %"}};
  a.state = state;
  a.active_since_ms = start_ms;
  a.fired_ms = start_ms + 10000;
  a.resolved_ms = state == AlertState::kResolved ? end_ms : 0;
  a.updated_ms = end_ms;
  a.last_breach_ms = end_ms - 1000;
  a.value = 0.012 + static_cast<double>(id) / 1000;
  a.threshold = 0.001;
  a.samples = 1000 + id;
  a.verdicts = {"rack:dc1/r" + std::to_string(id)};
  return a;
}

TEST(AlertStore, RoundTripKeepsEveryField) {
  TempDir dir;
  auto path = dir.file("analyzer.db");
  Alert firing = make_alert(7, "rack-loss", AlertState::kFiring, 1000000, 1060000);
  Alert resolved = make_alert(8, "rack-p99", AlertState::kResolved, 900000, 950000);
  resolved.value = std::nan("");
  {
    auto store = open_sqlite_alert_store(path);
    store->put({firing, resolved});
    store->put_next_id(12);
  }
  auto store = open_sqlite_alert_store(path);
  EXPECT_EQ(store->count(), 2u);
  auto loaded = store->load();
  ASSERT_EQ(loaded.active.size(), 1u);
  EXPECT_EQ(loaded.next_id, 12u);
  EXPECT_EQ(to_json(loaded.active[0]), to_json(firing));
  EXPECT_EQ(loaded.active[0].last_breach_ms, firing.last_breach_ms);
  AlertQuery all;
  auto list = store->query(all);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, 7u);  // newest first
  EXPECT_EQ(to_json(list[1]), to_json(resolved));
  EXPECT_TRUE(to_json(list[1])["value"].is_null());

  // Rewriting a row (the alert resolves) replaces it.
  firing.state = AlertState::kResolved;
  firing.resolved_ms = firing.updated_ms = 1070000;
  store->put({firing});
  EXPECT_EQ(store->count(), 2u);
  EXPECT_TRUE(store->load().active.empty());
  EXPECT_EQ(store->load().next_id, 12u);
}

TEST(AlertStore, QueryFilters) {
  TempDir dir;
  auto store = open_sqlite_alert_store(dir.file("a.db"));
  std::vector<Alert> alerts;
  // Alert i is active over [i*100 s, i*100 s + 50 s].
  for (uint64_t i = 1; i <= 10; ++i) {
    alerts.push_back(make_alert(
        i, i <= 5 ? "rack-loss" : "rack-p99", i == 10 ? AlertState::kFiring : AlertState::kResolved,
        static_cast<int64_t>(i) * 100000, static_cast<int64_t>(i) * 100000 + 50000));
  }
  alerts[2].scope = "dc";
  store->put(alerts);
  auto ids = [&](const AlertQuery& q) {
    std::vector<uint64_t> out;
    for (const auto& a : store->query(q)) out.push_back(a.id);
    // The same filter in memory must agree with SQL.
    std::vector<uint64_t> mem;
    for (const auto& a : alerts) {
      if (q.matches(a)) mem.push_back(a.id);
    }
    std::sort(mem.rbegin(), mem.rend());
    if (mem.size() > q.limit) mem.resize(q.limit);
    EXPECT_EQ(out, mem);
    return out;
  };
  AlertQuery q;
  q.state = AlertState::kFiring;
  EXPECT_EQ(ids(q), std::vector<uint64_t>({10}));
  q = {};
  q.rule = "rack-loss";
  EXPECT_EQ(ids(q), std::vector<uint64_t>({5, 4, 3, 2, 1}));
  q.limit = 2;
  EXPECT_EQ(ids(q), std::vector<uint64_t>({5, 4}));
  q = {};
  q.since_ms = 420000;  // alert 4 ended at 450 s
  q.until_ms = 600000;  // alert 6 began at 600 s
  EXPECT_EQ(ids(q), std::vector<uint64_t>({6, 5, 4}));
  q = {};
  q.scope = "dc";
  EXPECT_EQ(ids(q), std::vector<uint64_t>({3}));
  q = {};
  q.labels = {{"rack", "r6"}, {"dc", "dc1"}};
  EXPECT_EQ(ids(q), std::vector<uint64_t>({6}));
  q.labels = {{"rack", "r6"}, {"dc", "dc2"}};
  EXPECT_TRUE(ids(q).empty());
  q = {};
  q.severity = "warning";
  EXPECT_EQ(ids(q), std::vector<uint64_t>({10, 8, 6, 4, 2}));
  q = {};
  q.active_only = true;
  EXPECT_EQ(ids(q), std::vector<uint64_t>({10}));
  q = {};
  q.labels = {{"a'b", "x"}};  // not a plain key: matches nothing, no SQL injected
  EXPECT_TRUE(store->query(q).empty());
}

TEST(AlertStore, RetentionByAgeAndRows) {
  TempDir dir;
  auto store = open_sqlite_alert_store(dir.file("a.db"));
  const int64_t day = 86400000;
  int64_t now = 1000 * day;
  std::vector<Alert> alerts;
  // Ten resolved alerts, resolved 10, 9, ..., 1 days ago, and one firing since 200 days.
  for (uint64_t i = 1; i <= 10; ++i) {
    int64_t end = now - static_cast<int64_t>(11 - i) * day;
    alerts.push_back(make_alert(i, "rack-loss", AlertState::kResolved, end - 60000, end));
  }
  alerts.push_back(make_alert(11, "dc-loss", AlertState::kFiring, now - 200 * day, now));
  store->put(alerts);
  AlertRetention r;
  r.max_age_ms = 5 * day + 1;  // keeps those resolved 5 days ago or later
  r.max_rows = 100;
  EXPECT_EQ(store->prune(r, now), 5u);
  EXPECT_EQ(store->count(), 6u);
  r.max_rows = 3;  // the newest three resolved stay, the firing one always
  EXPECT_EQ(store->prune(r, now), 2u);
  std::vector<uint64_t> left;
  for (const auto& a : store->query(AlertQuery{})) left.push_back(a.id);
  EXPECT_EQ(left, std::vector<uint64_t>({11, 10, 9, 8}));
  EXPECT_EQ(store->prune(r, now), 0u);
}

TEST(AlertStore, RejectsAFileThatIsNotADatabase) {
  TempDir dir;
  auto path = dir.file("junk.db");
  std::ofstream(path) << std::string(4096, 'x');
  try {
    open_sqlite_alert_store(path);
    FAIL() << "opened a junk file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(AlertBook, RestoredAlertsHoldThenResolve) {
  AlertBook book;
  Alert a = make_alert(41, "rack-loss", AlertState::kFiring, 1000, 5000);
  a.fingerprint = "rack-loss|rack=dc1/r41";
  Alert pending = make_alert(42, "rack-loss", AlertState::kPending, 1000, 5000);
  book.restore({a, pending}, 50, /*hold_until_ms=*/100000);
  EXPECT_EQ(book.active_count(), 1u);  // pending ones are not restored
  EXPECT_EQ(book.next_id(), 50u);
  RuleSpec spec;
  spec.name = "rack-loss";
  spec.hold_ms = 30000;
  std::vector<AlertEvent> events;
  Instance clear{"rack=dc1/r41", {}, {false, true, 0, 10}, "", {}, ""};
  book.apply(spec, {clear}, 60000, &events);  // held: the windows are still filling
  EXPECT_TRUE(events.empty());
  book.apply(spec, {}, 99999, &events);
  EXPECT_TRUE(events.empty());
  book.apply(spec, {}, 100000, &events);  // grace over, no breach since: resolves
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AlertEvent::Kind::kResolved);
  EXPECT_EQ(events[0].alert.id, 41u);
  EXPECT_EQ(events[0].alert.fired_ms, a.fired_ms);
  // A new alert continues the ids.
  Instance breach{"rack=dc1/r1", {}, {true, false, 0.5, 1000}, "", {}, ""};
  book.apply(spec, {breach}, 100001, &events);
  EXPECT_EQ(book.list(std::nullopt, true, 0, 10).at(0).id, 50u);
}

/// The analyzer with a history file: an alert fires; a new analyzer on the same file (a restart)
/// has it firing and notifies nothing new; deleting its rule resolves it, and the resolved alert
/// is still listed by the next one.
TEST(Analyzer, AlertHistorySurvivesARestart) {
  TempDir dir;
  metrics::Registry registry;
  auto topology = std::make_shared<model::Topology>();
  AnalyzerOptions options;
  options.history_path = dir.file("data/analyzer.db");
  int64_t t0 = 1'700'000'000'000;
  uint64_t rack_down_id = 0;
  {
    Analyzer analyzer(options, &registry, [topology] { return topology; });
    testing::MiniNet net;
    auto step = [&](int64_t t) {
      net.send(t, [&](const v1::ResultBatch& b) { analyzer.observe(b, t); });
      analyzer.evaluate(t);
    };
    for (int64_t t = t0 + 5000; t <= t0 + 60000; t += 5000) step(t);
    net.silent = [](const testing::Node& n) { return n.dc == 0 && n.rack == 2; };
    for (int64_t t = t0 + 65000; t <= t0 + 90000; t += 5000) step(t);
    for (const auto& a : analyzer.alerts(AlertState::kFiring, true)) {
      if (a.labels.at("alertname") == "RackDown") rack_down_id = a.id;
    }
    ASSERT_NE(rack_down_id, 0u);
    analyzer.stop();
  }
  ASSERT_TRUE(std::filesystem::exists(options.history_path));
  http::Response list;
  {
    Analyzer analyzer(options, &registry, [topology] { return topology; });
    http::Router router;
    analyzer.register_routes(router);
    auto firing = analyzer.alerts(AlertState::kFiring, true);
    auto it = std::find_if(firing.begin(), firing.end(),
                           [&](const Alert& a) { return a.id == rack_down_id; });
    ASSERT_NE(it, firing.end());
    EXPECT_EQ(it->labels.at("component"), "rack:dc0/dc0-r2");
    EXPECT_EQ(it->scope, "rack");
    EXPECT_EQ(it->verdicts, std::vector<std::string>({"rack:dc0/dc0-r2"}));
    http::Request req;
    req.method = "GET";
    req.path = "/api/v1/alerts";
    req.query = "state=firing&scope=rack&rule=localization/rack_down";
    auto j = json::parse(router.dispatch(req).body)["alerts"];
    ASSERT_EQ(j.size(), 1u) << j.dump(2);
    EXPECT_EQ(j[0]["id"], rack_down_id);
    req.query = "scope=galaxy";
    auto bad = router.dispatch(req);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(json::parse(bad.body)["field"], "scope");
    req.query = "until=yesterday";
    EXPECT_EQ(json::parse(router.dispatch(req).body)["field"], "until");
    analyzer.stop();
  }
  // A restart with the detectors off: their alerts resolve at once, and stay in the history.
  options.engine.run_detectors = false;
  {
    Analyzer analyzer(options, &registry, [topology] { return topology; });
    auto firing = analyzer.alerts(AlertState::kFiring, true);
    EXPECT_FALSE(firing.empty());  // the rule alerts (server-no-data) stay
    for (const auto& a : firing) EXPECT_FALSE(a.rule.starts_with("localization/")) << a.rule;
    http::Router router;
    analyzer.register_routes(router);
    http::Request req;
    req.method = "GET";
    req.path = "/api/v1/alerts";
    req.query = "state=resolved&labels=component%3Drack:dc0/dc0-r2";
    auto j = json::parse(router.dispatch(req).body)["alerts"];
    ASSERT_EQ(j.size(), 1u) << j.dump(2);
    EXPECT_EQ(j[0]["id"], rack_down_id);
    EXPECT_FALSE(j[0]["fired_ms"].is_null());
    EXPECT_FALSE(j[0]["resolved_ms"].is_null());
  }
}

}  // namespace
}  // namespace pingmesh::analyze
