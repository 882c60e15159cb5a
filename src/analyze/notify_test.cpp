#include "analyze/notify.hpp"

#include <gtest/gtest.h>

namespace pingmesh::analyze {
namespace {

Alert firing_alert() {
  Alert a;
  a.id = 7;
  a.rule = "dc-loss";
  a.fingerprint = "dc-loss|dc=dc1";
  a.labels = {{"alertname", "dc-loss"}, {"severity", "critical"}, {"dc", "dc1"}};
  a.annotations = {{"summary", "loss 1 %"}};
  a.state = AlertState::kFiring;
  a.active_since_ms = 1'700'000'000'000;
  a.fired_ms = 1'700'000'010'500;
  a.updated_ms = a.fired_ms;
  a.value = 0.01;
  a.verdicts = {"spine_layer:dc1"};
  return a;
}

TEST(Notify, Rfc3339) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(1'700'000'010'500), "2023-11-14T22:13:30.500Z");
}

TEST(Notify, WebhookPayload) {
  Alert a = firing_alert();
  Alert r = a;
  r.state = AlertState::kResolved;
  r.resolved_ms = a.fired_ms + 60000;
  auto j = webhook_payload({{AlertEvent::Kind::kFiring, a}, {AlertEvent::Kind::kResolved, r}},
                           "http://pm:9000");
  EXPECT_EQ(j["status"], "firing");
  ASSERT_EQ(j["alerts"].size(), 2u);
  EXPECT_EQ(j["alerts"][0]["status"], "firing");
  EXPECT_EQ(j["alerts"][0]["labels"]["alertname"], "dc-loss");
  EXPECT_EQ(j["alerts"][0]["startsAt"], "2023-11-14T22:13:30.500Z");
  EXPECT_EQ(j["alerts"][0]["verdicts"][0], "spine_layer:dc1");
  EXPECT_EQ(j["alerts"][1]["status"], "resolved");
  EXPECT_EQ(j["alerts"][1]["endsAt"], "2023-11-14T22:14:30.500Z");
  auto only_resolved = webhook_payload({{AlertEvent::Kind::kResolved, r}}, "");
  EXPECT_EQ(only_resolved["status"], "resolved");
}

TEST(Notify, AlertmanagerPayload) {
  Alert a = firing_alert();
  auto j = alertmanager_payload({a}, a.fired_ms, 60000, "http://pm:9000");
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["labels"]["dc"], "dc1");
  EXPECT_EQ(j[0]["annotations"]["summary"], "loss 1 %");
  EXPECT_EQ(j[0]["startsAt"], "2023-11-14T22:13:30.500Z");
  EXPECT_EQ(j[0]["endsAt"], "2023-11-14T22:16:30.500Z");  // now + 3 resends
  EXPECT_EQ(j[0]["generatorURL"], "http://pm:9000/api/v1/alerts?state=firing");
  a.state = AlertState::kResolved;
  a.resolved_ms = a.fired_ms + 5000;
  j = alertmanager_payload({a}, a.fired_ms + 6000, 60000, "");
  EXPECT_EQ(j[0]["endsAt"], "2023-11-14T22:13:35.500Z");
}

TEST(Notify, BackoffDoublesUpToTheCap) {
  EXPECT_EQ(backoff_delay_ms(0, 500, 30000), 0);
  EXPECT_EQ(backoff_delay_ms(1, 500, 30000), 500);
  EXPECT_EQ(backoff_delay_ms(2, 500, 30000), 1000);
  EXPECT_EQ(backoff_delay_ms(4, 500, 30000), 4000);
  EXPECT_EQ(backoff_delay_ms(20, 500, 30000), 30000);
}

}  // namespace
}  // namespace pingmesh::analyze
