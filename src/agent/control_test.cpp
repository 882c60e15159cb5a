#include "agent/control.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pingmesh::agent {
namespace {

TEST(PullTracker, StopsAfterThreeConsecutiveFailures) {
  PullTracker t(3);
  EXPECT_EQ(t.on_result(PullResult::kOk), PullAction::kApply);
  EXPECT_TRUE(t.probing());
  EXPECT_EQ(t.on_result(PullResult::kFailed), PullAction::kNone);
  EXPECT_EQ(t.on_result(PullResult::kFailed), PullAction::kNone);
  EXPECT_TRUE(t.probing());
  EXPECT_EQ(t.on_result(PullResult::kFailed), PullAction::kStop);
  EXPECT_FALSE(t.probing());
  EXPECT_EQ(t.on_result(PullResult::kFailed), PullAction::kNone) << "already stopped";
  EXPECT_EQ(t.on_result(PullResult::kOk), PullAction::kApply) << "resumes by itself";
  EXPECT_TRUE(t.probing());
  EXPECT_EQ(t.consecutive_failures(), 0u);
}

TEST(PullTracker, SuccessResetsTheFailureCount) {
  PullTracker t(3);
  t.on_result(PullResult::kOk);
  t.on_result(PullResult::kFailed);
  t.on_result(PullResult::kFailed);
  EXPECT_EQ(t.on_result(PullResult::kNotModified), PullAction::kNone);
  t.on_result(PullResult::kFailed);
  t.on_result(PullResult::kFailed);
  EXPECT_TRUE(t.probing());
}

TEST(PullTracker, NotFoundAndKillSwitchStopAtOnce) {
  PullTracker t(3);
  t.on_result(PullResult::kOk);
  EXPECT_EQ(t.on_result(PullResult::kStopped), PullAction::kStop);
  EXPECT_FALSE(t.probing());
  t.on_result(PullResult::kOk);
  EXPECT_EQ(t.on_result(PullResult::kNotFound), PullAction::kStop);
  EXPECT_FALSE(t.probing());
}

TEST(PullTracker, MalformedKeepsTheLastGoodList) {
  PullTracker t(3);
  t.on_result(PullResult::kOk);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.on_result(PullResult::kMalformed), PullAction::kNone);
  EXPECT_TRUE(t.probing());
}

TEST(Control, HeartbeatBody) {
  ControlOptions o;
  o.name = "srv1";
  o.hostname = "srv1.example";
  o.addresses = {"10.0.0.1", "fd00::1"};
  o.version = "0.1.0";
  o.capabilities = {"icmp", "tcp"};
  auto j = nlohmann::json::parse(heartbeat_json(o));
  EXPECT_EQ(j["name"], "srv1");
  EXPECT_EQ(j["addresses"].size(), 2u);
  EXPECT_EQ(j["capabilities"][0], "icmp");
  EXPECT_FALSE(j.contains("dc"));
  o.dc = "dc1";
  EXPECT_EQ(nlohmann::json::parse(heartbeat_json(o))["dc"], "dc1");
}

}  // namespace
}  // namespace pingmesh::agent
