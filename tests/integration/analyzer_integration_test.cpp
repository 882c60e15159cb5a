// The analyzer through the real `pingmesh server` and `pingmesh ctl`: alert rules from flags and
// files, an alert driven by result batches posted to the collector, the alert history surviving
// server restarts, and the ctl's alerts/verdicts views.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/http.hpp"
#include "process.hpp"

namespace pingmesh::testing {
namespace {

using nlohmann::json;

constexpr const char* kAdmin = "it-admin-token";
constexpr const char* kAgent = "it-agent-token";

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class AnalyzerIntegration : public ::testing::Test {
 protected:
  std::unique_ptr<ServerProcess> start_server() {
    std::vector<std::string> args{"--db",
                                  (dir.path() / "pingmesh.db").string(),
                                  "--data-dir",
                                  (dir.path() / "data").string(),
                                  "--admin-token",
                                  kAdmin,
                                  "--agent-token",
                                  kAgent,
                                  "--min-interval-ms",
                                  "1000"};
    auto s = std::make_unique<ServerProcess>(dir.path(), args);
    EXPECT_TRUE(s->start()) << s->log();
    return s;
  }

  http::ClientResponse call(const std::string& method, const std::string& path,
                            const std::string& body = "", const std::string& token = kAdmin) {
    http::ClientRequest r;
    r.method = method;
    r.url = server->url() + path;
    r.body = body;
    if (!token.empty()) r.headers.emplace_back("Authorization", std::string("Bearer ") + token);
    if (!body.empty()) r.headers.emplace_back("Content-Type", "application/json");
    return client.perform(r);
  }

  RunResult ctl(std::vector<std::string> args) {
    std::vector<std::string> full{"ctl", "--server", server->url(), "--token", kAdmin};
    full.insert(full.end(), args.begin(), args.end());
    return run_pingmesh(full, dir.path());
  }

  json ctl_json(std::vector<std::string> args) {
    args.insert(args.begin(), {"-o", "json"});
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  /// One batch from `src` to `dst`: `n` answered TCP probes of rtt_us each.
  void post_batch(const std::string& src, const std::string& src_addr, const std::string& dst,
                  const std::string& dst_addr, uint32_t rtt_us, int n) {
    json b{{"agent", src},
           {"dc", "east"},
           {"rack", "r1"},
           {"address", src_addr},
           {"batchId", std::to_string(++batch_id)},
           {"peers", {{{"name", dst}, {"address", dst_addr}, {"dc", "east"}, {"rack", "r1"}}}},
           {"results", json::array()}};
    int64_t t = now_us();
    for (int i = 0; i < n; ++i) {
      b["results"].push_back({{"peer", 0},
                              {"timestampUs", std::to_string(t - 1000 * i)},
                              {"protocol", "TCP"},
                              {"port", 9001},
                              {"level", "INTRA_RACK"},
                              {"outcome", "OK"},
                              {"rttUs", rtt_us}});
    }
    auto r = call("POST", "/api/v1/results", b.dump(), kAgent);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  /// The alerts of `rule` the API lists with `query` (e.g. "state=firing").
  json alerts_of(const std::string& rule, const std::string& query) {
    auto r = call("GET", "/api/v1/alerts?" + query + "&rule=" + rule, "", "");
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body)["alerts"];
  }

  TempDir dir;
  http::Client client;
  std::unique_ptr<ServerProcess> server;
  uint64_t batch_id = 0;
};

TEST_F(AnalyzerIntegration, AlertRulesThroughCtl) {
  server = start_server();
  // From flags: a new rule starts from the defaults, flags change only what they name.
  auto set = ctl({"alert-rule", "set", "slow-dc", "--scope", "dc", "--metric", "p50", "--threshold",
                  "2", "--window-s", "10", "--label", "team=net", "--match", "dc=east"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_NE(set.out.find("slow-dc"), std::string::npos) << set.out;
  ASSERT_EQ(ctl({"alert-rule", "set", "slow-dc", "--for-s", "20", "--severity", "page"}).exit_code,
            0);
  auto got = ctl_json({"alert-rule", "get", "slow-dc"});
  EXPECT_EQ(got["metric"], "p50");
  EXPECT_EQ(got["threshold"], 2.0);
  EXPECT_EQ(got["for_s"], 20);
  EXPECT_EQ(got["severity"], "page");
  EXPECT_EQ(got["labels"], json({{"team", "net"}}));
  EXPECT_EQ(got["match"], json({{"dc", "east"}}));

  // The server's error names the field; ctl shows it and fails.
  auto bad =
      ctl({"alert-rule", "set", "lossy", "--scope", "dc", "--metric", "loss", "--threshold", "5"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("HTTP 400: threshold:"), std::string::npos) << bad.err;
  auto bad_scope = ctl({"alert-rule", "set", "x", "--scope", "galaxy"});
  EXPECT_EQ(bad_scope.exit_code, 1);
  EXPECT_NE(bad_scope.err.find("scope"), std::string::npos) << bad_scope.err;
  EXPECT_EQ(ctl({"alert-rule", "get", "lossy"}).exit_code, 1);

  // From files: one rule (YAML), a list (JSON), a list with an error, replace-all.
  auto one = dir.write("one.yaml",
                       "name: rack-p50\nscope: rack\nmetric: p50\nthreshold: 3\nwindow_s: 20\n");
  auto r = ctl({"alert-rule", "set", "--file", one, "--severity", "critical"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ctl_json({"alert-rule", "get", "rack-p50"})["severity"], "critical");
  auto list = dir.write(
      "list.json",
      R"({"rules": [{"name": "a1", "scope": "global", "metric": "failure_rate", "threshold": 0.05},
                    {"name": "rack-p50", "scope": "rack", "metric": "p99", "threshold": 4}]})");
  r = ctl({"alert-rule", "set", "--file", list});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 alert rules created, 1 updated"), std::string::npos) << r.out;
  EXPECT_EQ(ctl_json({"alert-rule", "get", "rack-p50"})["metric"], "p99");
  auto broken =
      dir.write("broken.yaml",
                "- name: ok1\n  scope: dc\n  metric: loss\n  threshold: 0.01\n"
                "- name: bad2\n  scope: dc\n  metric: p99\n  threshold: 5\n  window_s: 9999\n");
  r = ctl({"alert-rule", "set", "--file", broken});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("rules[1] (bad2): HTTP 400: window_s:"), std::string::npos) << r.err;
  r = ctl({"alert-rule", "set", "--file", broken, "--replace-all"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("rules[1].window_s"), std::string::npos) << r.err;

  auto table = ctl({"alert-rule", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("NAME"), std::string::npos);
  EXPECT_NE(table.out.find("slow-dc"), std::string::npos);
  EXPECT_NE(table.out.find("ok1"), std::string::npos);  // the list is applied in order
  auto prom = ctl({"alert-rule", "prometheus"});
  ASSERT_EQ(prom.exit_code, 0) << prom.err;
  EXPECT_NE(prom.out.find("alert: slow-dc"), std::string::npos) << prom.out;
  EXPECT_NE(prom.out.find("pingmesh_rtt_seconds"), std::string::npos);

  r = ctl({"alert-rule", "rm", "a1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ctl({"alert-rule", "rm", "a1"}).exit_code, 1);
  auto replace = dir.write(
      "all.yaml", "rules:\n  - name: only\n    scope: dc\n    metric: p99\n    threshold: 5\n");
  r = ctl({"alert-rule", "set", "--file", replace, "--replace-all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rules = ctl_json({"alert-rule", "list"});
  ASSERT_EQ(rules.size(), 1u) << rules.dump();
  EXPECT_EQ(rules[0]["name"], "only");
}

TEST_F(AnalyzerIntegration, AlertFiresAndHistorySurvivesRestarts) {
  server = start_server();
  for (auto args : std::vector<std::vector<std::string>>{
           {"dc", "add", "east", "--mode", "rack", "--interval-ms", "1000"},
           {"rack", "add", "east", "r1"},
           {"server", "add", "e1", "--dc", "east", "--rack", "r1", "--address", "10.0.0.1"},
           {"server", "add", "e2", "--dc", "east", "--rack", "r1", "--address", "10.0.0.2"},
           {"alert-rule", "set",           "slow-dc", "--scope",      "dc", "--metric",
            "p50",        "--threshold",   "2",       "--window-s",   "10", "--for-s",
            "0",          "--min-samples", "20",      "--min-events", "5",  "--severity",
            "critical",   "--label",       "team=net"}}) {
    auto r = ctl(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  for (const auto& [name, addr] : {std::pair{"e1", "10.0.0.1"}, std::pair{"e2", "10.0.0.2"}}) {
    json hb{{"name", name}, {"hostname", name}, {"addresses", {addr}}, {"version", "it"}};
    auto r = call("POST", "/api/v1/heartbeat", hb.dump(), kAgent);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  auto started_s = now_us() / 1000000;

  // 20 ms RTTs inside the DC until the rule fires (evaluations every 2 s).
  json firing;
  for (int i = 0; i < 60 && firing.empty(); ++i) {
    post_batch("e1", "10.0.0.1", "e2", "10.0.0.2", 20000, 10);
    post_batch("e2", "10.0.0.2", "e1", "10.0.0.1", 20000, 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    firing = alerts_of("slow-dc", "state=firing");
  }
  ASSERT_EQ(firing.size(), 1u) << server->log();
  auto alert = firing[0];
  EXPECT_EQ(alert["labels"]["dc"], "east");
  EXPECT_EQ(alert["labels"]["team"], "net");
  EXPECT_EQ(alert["scope"], "dc");
  EXPECT_GT(alert["value"].get<double>(), 2.0);
  uint64_t id = alert["id"];

  auto table = ctl({"alerts", "--state", "firing"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("slow-dc"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("dc=east"), std::string::npos) << table.out;
  auto verdicts = ctl({"verdicts"});
  ASSERT_EQ(verdicts.exit_code, 0) << verdicts.err;
  EXPECT_NE(verdicts.out.find("COMPONENT"), std::string::npos);

  // Restart: the firing alert is back with its id and times, without new data.
  EXPECT_EQ(server->stop(), 0);
  server = start_server();
  EXPECT_NE(server->log().find("firing restored"), std::string::npos) << server->log();
  auto after = alerts_of("slow-dc", "state=firing");
  ASSERT_EQ(after.size(), 1u) << server->log();
  EXPECT_EQ(after[0]["id"], id);
  EXPECT_EQ(after[0]["fired_ms"], alert["fired_ms"]);
  EXPECT_EQ(after[0]["active_since_ms"], alert["active_since_ms"]);
  auto via_ctl = ctl_json({"alerts", "--state", "firing", "--rule", "slow-dc", "--since", "1h",
                           "--label", "dc=east", "--scope", "dc"});
  ASSERT_TRUE(via_ctl.is_array());
  ASSERT_EQ(via_ctl.size(), 1u) << via_ctl.dump();
  EXPECT_EQ(via_ctl[0]["id"], id);
  EXPECT_TRUE(ctl_json({"alerts", "--until", std::to_string(started_s - 3600)}).empty());
  EXPECT_TRUE(ctl_json({"alerts", "--rule", "slow-dc", "--label", "dc=west"}).empty());
  auto bad = ctl({"alerts", "--since", "last tuesday"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--since"), std::string::npos) << bad.err;
  auto bad_scope = ctl({"alerts", "--scope", "galaxy"});
  EXPECT_EQ(bad_scope.exit_code, 1);
  EXPECT_NE(bad_scope.err.find("HTTP 400: scope:"), std::string::npos) << bad_scope.err;

  // Deleting the rule resolves the alert; the resolved alert is history after another restart.
  ASSERT_EQ(ctl({"alert-rule", "rm", "slow-dc"}).exit_code, 0);
  auto resolved = alerts_of("slow-dc", "state=resolved");
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_FALSE(resolved[0]["resolved_ms"].is_null());
  EXPECT_TRUE(alerts_of("slow-dc", "state=firing").empty());
  EXPECT_EQ(server->stop(), 0);
  server = start_server();
  auto history = alerts_of("slow-dc", "state=resolved");
  ASSERT_EQ(history.size(), 1u) << server->log();
  EXPECT_EQ(history[0]["id"], id);
  EXPECT_EQ(history[0]["resolved_ms"], resolved[0]["resolved_ms"]);
  EXPECT_EQ(history[0]["verdicts"], resolved[0]["verdicts"]);
  EXPECT_TRUE(alerts_of("slow-dc", "state=firing").empty());
  auto all = ctl({"alerts", "--state", "resolved"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("slow-dc"), std::string::npos) << all.out;
}

}  // namespace
}  // namespace pingmesh::testing
