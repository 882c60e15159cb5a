#include "analyze/rules.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace pingmesh::analyze {
namespace {

using nlohmann::json;

TEST(Rules, RoundTripThroughJson) {
  AlertRule r;
  r.name = "rack-p999";
  r.scope = Scope::kRack;
  r.metric = Metric::kP999;
  r.threshold = 12.5;
  r.window_s = 45;
  r.for_s = 20;
  r.severity = "page";
  r.labels = {{"team", "net"}};
  r.match = {{"dc", "dc1"}};
  r.protocol = collector::Protocol::kUdp;
  RuleLimits limits;
  EXPECT_EQ(rule_from_json(to_json(r), limits), r);
}

TEST(Rules, DefaultsAreThePapersSla) {
  auto rules = default_alert_rules();
  bool loss = false, p99 = false;
  for (const auto& r : rules) {
    if (r.scope == Scope::kDc && r.metric == Metric::kLoss) loss = r.threshold == 0.001;
    if (r.scope == Scope::kDc && r.metric == Metric::kP99) p99 = r.threshold == 5;
  }
  EXPECT_TRUE(loss);
  EXPECT_TRUE(p99);
  // They survive their own validation.
  EXPECT_EQ(rules_from_json(rules_to_json(rules), RuleLimits{}).size(), rules.size());
}

TEST(Rules, ValidationNamesTheField) {
  RuleLimits limits;
  auto field_of = [&](json j) {
    try {
      rule_from_json(j, limits);
    } catch (const RuleError& e) {
      return e.field();
    }
    return std::string("(accepted)");
  };
  json ok = {{"name", "x"}, {"scope", "dc"}, {"metric", "loss"}, {"threshold", 0.01}};
  EXPECT_EQ(field_of(ok), "(accepted)");
  auto with = [&](const char* k, json v) {
    json j = ok;
    j[k] = std::move(v);
    return j;
  };
  EXPECT_EQ(field_of(with("name", "bad name")), "name");
  EXPECT_EQ(field_of(with("scope", "planet")), "scope");
  EXPECT_EQ(field_of(with("metric", "p42")), "metric");
  EXPECT_EQ(field_of(with("threshold", 2)), "threshold");  // a ratio >= 1
  EXPECT_EQ(field_of(with("threshold", -1)), "threshold");
  EXPECT_EQ(field_of(with("window_s", 600)), "window_s");  // beyond the horizon
  EXPECT_EQ(field_of(with("protocol", "sctp")), "protocol");
  EXPECT_EQ(field_of(with("match", json{{"rack", "r1"}})), "match.rack");  // dc scope
  EXPECT_EQ(field_of(with("labels", json{{"bad-label", "x"}})), "labels.bad-label");
  EXPECT_EQ(field_of(with("color", "red")), "color");
  json no_threshold = {{"name", "x"}, {"scope", "dc"}, {"metric", "p99"}};
  EXPECT_EQ(field_of(no_threshold), "threshold");
  json no_data = {{"name", "x"}, {"scope", "rack"}, {"metric", "no_data"}};
  EXPECT_EQ(field_of(no_data), "(accepted)");
}

TEST(Rules, DocumentsRejectDuplicates) {
  json doc = {{"rules",
               {{{"name", "a"}, {"scope", "dc"}, {"metric", "loss"}, {"threshold", 0.01}},
                {{"name", "a"}, {"scope", "dc"}, {"metric", "p99"}, {"threshold", 5}}}}};
  try {
    rules_from_json(doc, RuleLimits{});
    FAIL() << "accepted a duplicate";
  } catch (const RuleError& e) {
    EXPECT_EQ(e.field(), "rules[1].name");
  }
}

TEST(Rules, PrometheusRulesAreValidYamlWithOneAlertPerExportedRule) {
  auto rules = default_alert_rules();
  AlertRule server_p99;
  server_p99.name = "server-p99";
  server_p99.scope = Scope::kServer;
  server_p99.metric = Metric::kP99;
  server_p99.threshold = 5;
  rules.push_back(server_p99);
  auto text = prometheus_rules_yaml(rules, 30);
  YAML::Node doc = YAML::Load(text);
  auto list = doc["groups"][0]["rules"];
  ASSERT_TRUE(list.IsSequence());
  int exported = 0;
  for (const auto& r : rules) exported += r.scope == Scope::kServer ? 0 : 1;
  EXPECT_EQ(static_cast<int>(list.size()), exported);
  EXPECT_NE(text.find("Skipped"), std::string::npos);
  EXPECT_NE(text.find("server-p99"), std::string::npos);
  bool found = false;
  for (const auto& r : list) {
    if (r["alert"].as<std::string>() != "dc-p99") continue;
    found = true;
    auto expr = r["expr"].as<std::string>();
    EXPECT_NE(
        expr.find("pingmesh_rtt_seconds{scope=\"dc\",protocol=\"tcp\",quantile=\"0.99\"} > 0.005"),
        std::string::npos)
        << expr;
    EXPECT_EQ(r["for"].as<std::string>(), "10s");
    EXPECT_EQ(r["labels"]["severity"].as<std::string>(), "critical");
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace pingmesh::analyze
