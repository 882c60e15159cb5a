#include "analyze/analyzer.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

#include "analyze/test_util.hpp"

namespace pingmesh::analyze {
namespace {

using nlohmann::json;

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("pm-analyzer-" + std::to_string(::getpid()) + "-" +
            std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

http::Response call(http::Router& router, std::string method, std::string target,
                    std::string body = {}, std::string remote = "127.0.0.1") {
  http::Request req;
  req.method = std::move(method);
  auto q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  req.body = std::move(body);
  req.remote_addr = std::move(remote);
  return router.dispatch(req);
}

TEST(Analyzer, RulesApiAndPersistence) {
  TempDir dir;
  auto path = (dir.path / "rules.json").string();
  metrics::Registry registry;
  AnalyzerOptions options;
  options.rules_path = path;
  {
    Analyzer analyzer(options, &registry, nullptr);
    http::Router router;
    analyzer.register_routes(router);
    auto list = json::parse(call(router, "GET", "/api/v1/alert-rules").body);
    EXPECT_EQ(list["rules"].size(), default_alert_rules().size());

    json rule = {{"name", "server-p99"},
                 {"scope", "server"},
                 {"metric", "p99"},
                 {"threshold", 8},
                 {"severity", "page"}};
    EXPECT_EQ(call(router, "POST", "/api/v1/alert-rules", rule.dump(), "10.0.0.1").status, 403);
    EXPECT_EQ(call(router, "POST", "/api/v1/alert-rules", rule.dump()).status, 201);
    EXPECT_EQ(call(router, "POST", "/api/v1/alert-rules", rule.dump()).status, 409);
    auto bad =
        call(router, "POST", "/api/v1/alert-rules",
             json{{"name", "x"}, {"scope", "dc"}, {"metric", "loss"}, {"threshold", 5}}.dump());
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(json::parse(bad.body)["field"], "threshold");
    EXPECT_EQ(call(router, "POST", "/api/v1/alert-rules", "{").status, 400);

    auto got = call(router, "GET", "/api/v1/alert-rules/server-p99");
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(json::parse(got.body)["threshold"], 8);
    rule["threshold"] = 9;
    EXPECT_EQ(call(router, "PUT", "/api/v1/alert-rules/server-p99", rule.dump()).status, 200);
    EXPECT_EQ(call(router, "DELETE", "/api/v1/alert-rules/dc-p99").status, 204);
    EXPECT_EQ(call(router, "DELETE", "/api/v1/alert-rules/dc-p99").status, 404);
    EXPECT_EQ(call(router, "GET", "/api/v1/alert-rules/nope").status, 404);

    auto prom = call(router, "GET", "/api/v1/alert-rules/prometheus");
    ASSERT_EQ(prom.status, 200);
    EXPECT_NE(prom.content_type.find("yaml"), std::string::npos);
    auto doc = YAML::Load(prom.body);
    EXPECT_TRUE(doc["groups"][0]["rules"].IsSequence());
  }
  // A new analyzer loads what the API wrote.
  Analyzer again(options, &registry, nullptr);
  auto rules = again.rules();
  auto has = [&](const std::string& n) {
    return std::any_of(rules.begin(), rules.end(), [&](const AlertRule& r) { return r.name == n; });
  };
  EXPECT_TRUE(has("server-p99"));
  EXPECT_FALSE(has("dc-p99"));
  for (const auto& r : rules) {
    if (r.name == "server-p99") {
      EXPECT_EQ(r.threshold, 9);
    }
  }
}

TEST(Analyzer, BadRulesFileIsAStartupError) {
  TempDir dir;
  auto path = (dir.path / "rules.yaml").string();
  std::ofstream(path) << "rules:\n  - name: x\n    scope: galaxy\n    metric: loss\n";
  AnalyzerOptions options;
  options.rules_path = path;
  metrics::Registry registry;
  try {
    Analyzer analyzer(options, &registry, nullptr);
    FAIL() << "accepted a bad file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("rules[0].scope"), std::string::npos) << e.what();
  }
}

TEST(Analyzer, AlertsVerdictsAndSeriesFromBatches) {
  metrics::Registry registry;
  auto topology = std::make_shared<model::Topology>();
  Analyzer analyzer(AnalyzerOptions{}, &registry, [topology] { return topology; });
  http::Router router;
  analyzer.register_routes(router);
  testing::MiniNet net;
  int64_t t0 = 1'700'000'000'000;
  auto step = [&](int64_t t) {
    net.send(t, [&](const v1::ResultBatch& b) { analyzer.observe(b, t); });
    analyzer.evaluate(t);
  };
  for (int64_t t = t0 + 5000; t <= t0 + 60000; t += 5000) step(t);
  EXPECT_TRUE(
      json::parse(call(router, "GET", "/api/v1/alerts?state=firing").body)["alerts"].empty());
  net.silent = [](const testing::Node& n) { return n.dc == 0 && n.rack == 2; };
  for (int64_t t = t0 + 65000; t <= t0 + 90000; t += 5000) step(t);

  auto firing = json::parse(call(router, "GET", "/api/v1/alerts?state=firing").body)["alerts"];
  bool rack_down = false;
  for (const auto& a : firing) {
    rack_down = rack_down || (a["labels"]["alertname"] == "RackDown" &&
                              a["labels"]["component"] == "rack:dc0/dc0-r2");
  }
  EXPECT_TRUE(rack_down) << firing.dump(2);
  auto verdicts = json::parse(call(router, "GET", "/api/v1/verdicts?active=true").body)["verdicts"];
  ASSERT_EQ(verdicts.size(), 1u) << verdicts.dump(2);
  EXPECT_EQ(verdicts[0]["kind"], "rack_down");
  EXPECT_EQ(call(router, "GET", "/api/v1/alerts?state=bogus").status, 400);
  auto since = json::parse(
      call(router, "GET", "/api/v1/alerts?since=" + std::to_string((t0 + 200000) / 1000)).body);
  EXPECT_TRUE(since["alerts"].empty());

  auto text = registry.render();
  EXPECT_NE(text.find("pingmesh_loss_ratio{dc=\"dc1\",protocol=\"tcp\",scope=\"dc\"} 0"),
            std::string::npos);
  // The silent rack's series stays, with no answers.
  EXPECT_NE(
      text.find(
          "pingmesh_window_answered{dc=\"dc0\",protocol=\"tcp\",rack=\"dc0-r2\",scope=\"rack\"} 0"),
      std::string::npos);
  EXPECT_NE(text.find("pingmesh_analyzer_alerts{state=\"firing\"}"), std::string::npos);
}

TEST(Analyzer, OpenApiFragmentListsEveryRoute) {
  metrics::Registry registry;
  Analyzer analyzer(AnalyzerOptions{}, &registry, nullptr);
  http::Router router;
  analyzer.register_routes(router);
  auto doc = Analyzer::openapi_fragment();
  for (const auto& [method, pattern] : router.routes()) {
    std::string m = method;
    std::transform(m.begin(), m.end(), m.begin(), ::tolower);
    EXPECT_TRUE(doc["paths"].contains(pattern) && doc["paths"][pattern].contains(m))
        << method << " " << pattern;
  }
}

}  // namespace
}  // namespace pingmesh::analyze
