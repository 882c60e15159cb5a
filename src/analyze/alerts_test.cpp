#include "analyze/alerts.hpp"

#include <gtest/gtest.h>

namespace pingmesh::analyze {
namespace {

RuleSpec spec(int64_t for_ms, int64_t hold_ms = 30000) {
  RuleSpec r;
  r.name = "dc-loss";
  r.alertname = "dc-loss";
  r.severity = "critical";
  r.for_ms = for_ms;
  r.hold_ms = hold_ms;
  r.threshold = 0.001;
  r.labels = {{"team", "net"}};
  return r;
}

Instance inst(const std::string& dc, bool breach, bool clear, double value = 0.01) {
  Instance i;
  i.key = "dc=" + dc;
  i.labels = {{"dc", dc}};
  i.condition.breach = breach;
  i.condition.clear = clear;
  i.condition.value = value;
  i.condition.samples = 1000;
  i.summary = "loss in " + dc;
  return i;
}

TEST(AlertBook, PendingThenFiringAfterForThenResolved) {
  AlertBook book;
  std::vector<AlertEvent> ev;
  auto r = spec(10000);
  book.apply(r, {inst("dc1", true, false)}, 1000, &ev);
  EXPECT_TRUE(ev.empty());
  auto active = book.list(std::nullopt, true, 0, 10);
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].state, AlertState::kPending);
  book.apply(r, {inst("dc1", true, false)}, 9000, &ev);
  EXPECT_TRUE(ev.empty());  // 8 s < for 10 s
  book.apply(r, {inst("dc1", true, false)}, 11000, &ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, AlertEvent::Kind::kFiring);
  EXPECT_EQ(ev[0].alert.labels.at("alertname"), "dc-loss");
  EXPECT_EQ(ev[0].alert.labels.at("team"), "net");
  EXPECT_EQ(ev[0].alert.labels.at("dc"), "dc1");
  EXPECT_EQ(ev[0].alert.fired_ms, 11000);
  ev.clear();
  // Neither breach nor clear (too few samples): holds.
  book.apply(r, {inst("dc1", false, false)}, 13000, &ev);
  EXPECT_TRUE(ev.empty());
  book.apply(r, {inst("dc1", false, true, 0.0)}, 15000, &ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, AlertEvent::Kind::kResolved);
  EXPECT_EQ(ev[0].alert.resolved_ms, 15000);
  EXPECT_EQ(book.active_count(), 0u);
  auto resolved = book.list(AlertState::kResolved, false, 0, 10);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].fired_ms, 11000);
}

TEST(AlertBook, PendingThatClearsIsDroppedSilently) {
  AlertBook book;
  std::vector<AlertEvent> ev;
  auto r = spec(10000);
  book.apply(r, {inst("dc1", true, false)}, 1000, &ev);
  book.apply(r, {inst("dc1", false, false)}, 3000, &ev);
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(book.active_count(), 0u);
  EXPECT_EQ(book.history_size(), 0u);
}

TEST(AlertBook, DeduplicatesByRuleAndInstance) {
  AlertBook book;
  std::vector<AlertEvent> ev;
  auto r = spec(0);
  for (int t = 0; t < 5; ++t) {
    book.apply(r, {inst("dc1", true, false), inst("dc2", true, false)}, 1000 * t, &ev);
  }
  EXPECT_EQ(ev.size(), 2u);  // one firing per instance, not per evaluation
  EXPECT_EQ(book.active_count(), 2u);
  auto other = spec(0);
  other.name = "dc-p99";
  book.apply(other, {inst("dc1", true, false)}, 5000, &ev);
  EXPECT_EQ(book.active_count(), 3u);
}

TEST(AlertBook, MissingInstancesHoldThenResolve) {
  AlertBook book;
  std::vector<AlertEvent> ev;
  auto r = spec(0, 20000);
  book.apply(r, {inst("dc1", true, false)}, 0, &ev);
  ev.clear();
  book.apply(r, {}, 10000, &ev);
  EXPECT_TRUE(ev.empty());
  book.apply(r, {}, 20000, &ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, AlertEvent::Kind::kResolved);
}

TEST(AlertBook, RefiringAfterResolutionIsANewAlert) {
  AlertBook book;
  std::vector<AlertEvent> ev;
  auto r = spec(0);
  book.apply(r, {inst("dc1", true, false)}, 0, &ev);
  book.apply(r, {inst("dc1", false, true)}, 2000, &ev);
  book.apply(r, {inst("dc1", true, false)}, 4000, &ev);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_NE(ev[0].alert.id, ev[2].alert.id);
  EXPECT_EQ(ev[0].alert.fingerprint, ev[2].alert.fingerprint);
}

TEST(AlertBook, HistoryIsBoundedAndFilterable) {
  AlertBook book(3);
  std::vector<AlertEvent> ev;
  auto r = spec(0);
  for (int i = 0; i < 5; ++i) {
    book.apply(r, {inst("dc1", true, false)}, i * 10000, &ev);
    book.apply(r, {inst("dc1", false, true)}, i * 10000 + 5000, &ev);
  }
  EXPECT_EQ(book.history_size(), 3u);
  auto recent = book.list(AlertState::kResolved, false, 40000, 10);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].resolved_ms, 45000);
  book.resolve_rule("dc-loss", 50000, &ev);  // nothing active: no event
  EXPECT_EQ(ev.size(), 10u);
}

TEST(AlertBook, ResolveRuleEndsItsAlerts) {
  AlertBook book;
  std::vector<AlertEvent> ev;
  book.apply(spec(0), {inst("dc1", true, false)}, 0, &ev);
  ev.clear();
  book.resolve_rule("dc-loss", 1000, &ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, AlertEvent::Kind::kResolved);
  EXPECT_EQ(book.active_count(), 0u);
}

}  // namespace
}  // namespace pingmesh::analyze
