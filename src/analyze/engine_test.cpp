#include "analyze/engine.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <set>

#include "analyze/test_util.hpp"

namespace pingmesh::analyze {
namespace {

using testing::MiniNet;
using testing::Node;
using testing::Probe;

/// Sends every server's batch for (t - 5 s, t] and evaluates at t.
void step(MiniNet& net, Engine& engine, int64_t t, std::vector<AlertEvent>* events) {
  net.send(t, [&](const v1::ResultBatch& b) { engine.observe(b, t); });
  engine.evaluate(t, events);
}

Engine make_engine() {
  Engine e;
  std::vector<AlertEvent> none;
  e.set_rules(default_alert_rules(), 0, &none);
  return e;
}

TEST(Engine, NoFalseAlarmOnNormalLossAndJitter) {
  MiniNet net;
  Engine engine = make_engine();
  // Far more than the normal 1e-5 loss: one connect retransmission somewhere every 20 s, and the
  // lognormal jitter with rare multi-ms spikes of test_util.
  int64_t drops = 0;
  net.fault = [&](const Node& src, Probe& p, int64_t t) {
    if (t % 20000 == 5000 && src.server == 3 && src.rack == (t / 20000) % 8 && p.dst.server == 4) {
      p.outcome = v1::DROP;
      ++drops;
    }
  };
  std::vector<AlertEvent> events;
  for (int64_t t = 5000; t <= 300000; t += 5000) step(net, engine, t, &events);
  EXPECT_GT(drops, 0);
  for (const auto& e : events) ADD_FAILURE() << "false alarm: " << e.alert.fingerprint;
  EXPECT_EQ(engine.alerts().active_count(), 0u);
  EXPECT_TRUE(engine.verdicts(true, 0).empty());
}

TEST(Engine, LossAlertGoesPendingFiringResolved) {
  MiniNet net;
  Engine engine = make_engine();
  std::vector<AlertEvent> events;
  for (int64_t t = 5000; t <= 60000; t += 5000) step(net, engine, t, &events);
  ASSERT_TRUE(events.empty());
  // 3 % of dc0's connects between racks need a SYN retransmission for 60 s.
  std::bernoulli_distribution lossy(0.03);
  net.fault = [&](const Node& src, Probe& p, int64_t t) {
    if (t > 60000 && t <= 120000 && src.dc == 0 && p.dst.dc == 0 && p.dst.rack != src.rack &&
        lossy(net.rng)) {
      p.outcome = v1::DROP;
    }
  };
  int64_t fired_at = 0, resolved_at = 0;
  bool saw_pending = false;
  for (int64_t t = 65000; t <= 200000; t += 5000) {
    events.clear();
    step(net, engine, t, &events);
    for (const auto& a : engine.alerts().list(AlertState::kPending, true, 0, 100)) {
      saw_pending = saw_pending || a.rule == "dc-loss";
    }
    for (const auto& e : events) {
      if (e.alert.rule != "dc-loss") continue;
      EXPECT_EQ(e.alert.labels.at("dc"), "dc0");
      if (e.kind == AlertEvent::Kind::kFiring && fired_at == 0) fired_at = t;
      if (e.kind == AlertEvent::Kind::kResolved) resolved_at = t;
    }
  }
  EXPECT_TRUE(saw_pending);
  ASSERT_GT(fired_at, 0);
  EXPECT_LE(fired_at - 60000, 30000);  // within 30 s of the fault
  ASSERT_GT(resolved_at, 120000);
  EXPECT_LE(resolved_at - 120000, 40000);
  // The spine layer of dc0 was localized and attached to the alert.
  auto history = engine.alerts().list(AlertState::kResolved, false, 0, 100);
  bool attached = false;
  for (const auto& a : history) {
    if (a.rule == "dc-loss") {
      attached =
          std::find(a.verdicts.begin(), a.verdicts.end(), "spine_layer:dc0") != a.verdicts.end();
    }
  }
  EXPECT_TRUE(attached);
}

TEST(Engine, SilentRackRaisesNoDataAndRackDown) {
  MiniNet net;
  Engine engine = make_engine();
  std::vector<AlertEvent> events;
  for (int64_t t = 5000; t <= 60000; t += 5000) step(net, engine, t, &events);
  ASSERT_TRUE(events.empty());
  net.silent = [](const Node& n) { return n.dc == 1 && n.rack == 6; };
  std::map<std::string, int64_t> fired;
  for (int64_t t = 65000; t <= 120000; t += 5000) {
    events.clear();
    step(net, engine, t, &events);
    for (const auto& e : events) {
      if (e.kind == AlertEvent::Kind::kFiring) fired.emplace(e.alert.fingerprint, t);
    }
  }
  ASSERT_TRUE(fired.contains("localization/rack_down|rack:dc1/dc1-r6"));
  EXPECT_LE(fired["localization/rack_down|rack:dc1/dc1-r6"] - 60000, 20000);
  EXPECT_TRUE(fired.contains("rack-no-data|rack=dc1/dc1-r6"));
  for (const auto& [fp, t] : fired) {
    EXPECT_EQ(fp.find("server_down"), std::string::npos) << fp;  // the rack explains them
  }
  // The rack comes back: everything resolves, and the pairs that failed during the outage are
  // not taken for a black hole.
  net.silent = nullptr;
  for (int64_t t = 125000; t <= 200000; t += 5000) {
    events.clear();
    step(net, engine, t, &events);
    for (const auto& e : events) {
      EXPECT_NE(e.kind, AlertEvent::Kind::kFiring) << e.alert.fingerprint;
    }
  }
  EXPECT_EQ(engine.alerts().active_count(), 0u);
}

TEST(Engine, AgentGoneButHostUpIsNoBlackHole) {
  // The agent of dc1-r2-s3 stops: it sends nothing and its TCP responder refuses, but its
  // kernel still answers ICMP. Its TCP pairs fail while it "answers" ICMP: that is not a ToR
  // black hole of its rack (the symptom must hold within one protocol).
  MiniNet net;
  net.icmp_too = true;
  Engine engine = make_engine();
  std::vector<AlertEvent> events;
  for (int64_t t = 5000; t <= 60000; t += 5000) step(net, engine, t, &events);
  ASSERT_TRUE(events.empty());
  auto gone = [](const Node& n) { return n.dc == 1 && n.rack == 2 && n.server == 3; };
  net.silent = [&](const Node& n) { return gone(n); };
  net.fault = [&](const Node&, Probe& p, int64_t) {
    if (!gone(p.dst)) return;
    if (p.protocol == v1::ICMP) {
      p.outcome = v1::OK;
      p.rtt_us = 200;
    } else {
      p.outcome = v1::REFUSED;
    }
  };
  std::set<std::string> kinds;
  for (int64_t t = 65000; t <= 150000; t += 5000) {
    step(net, engine, t, &events);
    for (const auto& r : engine.verdicts(true, 0)) {
      kinds.insert(r.verdict.kind + " " + r.verdict.component);
    }
  }
  for (const auto& k : kinds) {
    EXPECT_EQ(k.find("black_hole"), std::string::npos) << k;
  }
}

TEST(Engine, RuleChangesResolveAlertsOfRemovedRules) {
  MiniNet net;
  Engine engine = make_engine();
  std::vector<AlertEvent> events;
  AlertRule always;
  always.name = "always";
  always.scope = Scope::kGlobal;
  always.metric = Metric::kP50;
  always.threshold = 0.001;  // 1 us: every answer is slower
  always.for_s = 0;
  auto rules = engine.rules();
  rules.push_back(always);
  engine.set_rules(rules, 0, &events);
  for (int64_t t = 5000; t <= 30000; t += 5000) step(net, engine, t, &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].alert.rule, "always");
  events.clear();
  engine.set_rules(default_alert_rules(), 30000, &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AlertEvent::Kind::kResolved);
}

TEST(Engine, SeriesCoverScopes) {
  MiniNet net;
  Engine engine = make_engine();
  std::vector<AlertEvent> events;
  for (int64_t t = 5000; t <= 30000; t += 5000) step(net, engine, t, &events);
  auto series = engine.series(30000);
  int dcs = 0, racks = 0, pairs = 0, global = 0;
  for (const auto& s : series) {
    const auto& scope = s.labels.at("scope");
    dcs += scope == "dc";
    racks += scope == "rack";
    pairs += scope == "dc_pair";
    global += scope == "global";
    if (scope == "dc") {
      EXPECT_GT(s.probes, 0u);
      EXPECT_EQ(s.loss, 0);
      EXPECT_GT(s.p99_s, s.p50_s);
      EXPECT_LT(s.p99_s, 0.005);
    }
  }
  EXPECT_EQ(dcs, 2);
  EXPECT_EQ(racks, 16);
  EXPECT_EQ(pairs, 2);
  EXPECT_EQ(global, 1);
}

}  // namespace
}  // namespace pingmesh::analyze
