#include "analyze/trace.hpp"

#include <gtest/gtest.h>

namespace pingmesh::analyze {
namespace {

net::IpAddress ip(std::string_view s) { return *net::IpAddress::parse(s); }

/// One DC "d1" of 2 racks x 2 servers (d1r{r}h{h}, 10.1.r.h), spines d1s1 and d1s2 registered
/// with their ToR-facing addresses (IPv4 and IPv6), and a snapshot of it.
struct Fixture {
  model::Topology topo;
  Snapshot snap;

  Fixture() {
    model::Datacenter dc;
    dc.name = "d1";
    dc.probes = {{model::Protocol::kTcp, 9001, std::nullopt}};
    for (int s = 1; s <= 2; ++s) {
      model::Device d;
      d.name = "d1s" + std::to_string(s);
      d.layer = model::DeviceLayer::kSpine;
      for (int r = 1; r <= 2; ++r) {
        d.addresses.push_back(ip("100.65." + std::to_string(r) + "." + std::to_string(2 * s - 1)));
        d.addresses.push_back(ip("fd01:1:" + std::to_string(r) + ":" + std::to_string(s) + "::2"));
      }
      dc.devices.push_back(d);
    }
    dc.devices.push_back({"d1r1t", model::DeviceLayer::kTor, {ip("10.1.1.254")}});
    topo.dcs.push_back(dc);
    snap.dcs.push_back({"d1", {0, 1}});
    for (uint32_t r = 1; r <= 2; ++r) {
      snap.racks.push_back({"d1r" + std::to_string(r), 0, {}});
      for (uint32_t h = 1; h <= 2; ++h) {
        std::string name = "d1r" + std::to_string(r) + "h" + std::to_string(h);
        topo.servers.push_back({name,
                                "d1",
                                "d1r" + std::to_string(r),
                                {ip("fd00:1:" + std::to_string(r) + "::" + std::to_string(h)),
                                 ip("10.1." + std::to_string(r) + "." + std::to_string(h))},
                                name,
                                1,
                                "v"});
        ServerInfo si;
        si.name = name;
        si.dc = 0;
        si.rack = r - 1;
        si.known = true;
        snap.racks[r - 1].servers.push_back(static_cast<uint32_t>(snap.servers.size()));
        snap.servers.push_back(si);
      }
    }
  }

  /// Server index by name.
  uint32_t idx(const std::string& name) const {
    for (uint32_t i = 0; i < snap.servers.size(); ++i) {
      if (snap.servers[i].name == name) return i;
    }
    return 0;
  }

  void fail(const std::string& a, const std::string& b, uint32_t failures, bool ends_ok = true) {
    FailingPair p;
    p.src = idx(a);
    p.dst = idx(b);
    p.failures = failures;
    p.src_reaches_others = ends_ok;
    p.dst_answers_others = ends_ok;
    snap.failing.push_back(p);
  }
};

TEST(Trace, PicksTheWorstCrossRackPairsOnePerSource) {
  Fixture f;
  f.fail("d1r1h1", "d1r1h2", 9);  // same rack: never crosses a spine
  f.fail("d1r1h1", "d1r2h1", 2);
  f.fail("d1r1h1", "d1r2h2", 5);  // worst of d1r1h1
  f.fail("d1r2h1", "d1r1h1", 3);
  f.fail("d1r2h2", "d1r1h2", 7, false);  // an end is down: not a path problem
  auto pairs = pick_trace_pairs(f.snap, 0, f.topo, 4);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].src, "d1r1h1");
  EXPECT_EQ(pairs[0].dst, "d1r2h2");
  EXPECT_EQ(pairs[0].address.to_string(), "10.1.2.2");  // IPv4 first
  EXPECT_EQ(pairs[0].dport, 9001);
  EXPECT_EQ(pairs[1].src, "d1r2h1");
  EXPECT_EQ(pick_trace_pairs(f.snap, 0, f.topo, 1).size(), 1u);
}

TEST(Trace, WithoutFailingPairsPicksWorkingServersOfTheLossiestRackPairs) {
  Fixture f;
  for (auto& s : f.snap.servers) s.as_src.answered = s.as_dst.answered = 10;
  f.snap.servers[f.idx("d1r1h1")].as_dst.answered = 0;  // not answering: not a source/target
  f.snap.rack_pairs = {{0, 1, {}}, {1, 0, {}}, {0, 0, {}}};
  f.snap.rack_pairs[0].counts.lost = 3;
  f.snap.rack_pairs[1].counts.lost = 7;
  f.snap.rack_pairs[2].counts.lost = 9;  // the diagonal never crosses a spine
  auto pairs = pick_trace_pairs(f.snap, 0, f.topo, 4);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].src, "d1r2h1");  // d1r2 -> d1r1 loses most
  EXPECT_EQ(pairs[0].dst, "d1r1h2");
  EXPECT_EQ(pairs[1].src, "d1r1h2");
  EXPECT_EQ(pairs[1].dst, "d1r2h1");
}

TEST(Trace, MapsAPathToTheSingleSpineItCrossed) {
  Fixture f;
  auto spines = spine_addresses(f.topo.dcs[0]);
  EXPECT_EQ(spines.size(), 8u);  // ToR addresses are not spines
  EXPECT_EQ(spine_of_path({"10.1.1.254", "100.65.1.3", "10.1.2.2"}, spines), "d1s2");
  EXPECT_EQ(spine_of_path({"", "100.65.2.1", "", "10.1.2.2"}, spines), "d1s1");
  // Non-canonical IPv6 text maps too.
  EXPECT_EQ(spine_of_path({"fe80::1", "fd01:1:1:0002:0::2"}, spines), "d1s2");
  EXPECT_EQ(spine_of_path({"10.1.1.254", "", "10.1.2.2"}, spines), std::nullopt);
  // Two spines on one path (a loop or a mis-registration): no answer rather than a guess.
  EXPECT_EQ(spine_of_path({"100.65.1.1", "100.65.1.3"}, spines), std::nullopt);
}

nlohmann::json port_json(uint16_t sport, const std::string& spine_hop, uint32_t sent,
                         uint32_t answered) {
  return {{"sport", sport},       {"hops", {"10.1.1.254", spine_hop, "10.1.2.254", "10.1.2.2"}},
          {"reached", true},      {"sent", sent},
          {"answered", answered}, {"errors", 0}};
}

TEST(Trace, CoordinatorQueuesRateLimitedRoundsAndAggregatesResultsPerSpine) {
  Fixture f;
  f.fail("d1r1h1", "d1r2h2", 5);
  f.fail("d1r2h1", "d1r1h1", 3);
  TraceOptions o;
  o.ports = 4;
  o.min_interval_ms = 60000;
  TraceCoordinator c(o);
  std::vector<std::string> fabric{"d1"};
  ASSERT_TRUE(c.due(1000, fabric));
  EXPECT_EQ(c.plan(1000, fabric, f.snap, f.topo), 2u);
  // Rate limit: no second round within min_interval_ms.
  EXPECT_FALSE(c.due(30000, fabric));
  EXPECT_EQ(c.plan(30000, fabric, f.snap, f.topo), 0u);

  EXPECT_EQ(c.take_requests("d1r2h2", 2000), "");  // not a source
  auto body = nlohmann::json::parse(c.take_requests("d1r1h1", 2000));
  ASSERT_EQ(body["requests"].size(), 1u);
  const auto& req = body["requests"][0];
  EXPECT_EQ(req["dst"], "10.1.2.2");
  EXPECT_EQ(req["dport"], 9001);
  ASSERT_EQ(req["sports"].size(), 4u);
  for (const auto& p : req["sports"]) EXPECT_GE(p.get<uint32_t>(), o.first_port);
  EXPECT_EQ(c.take_requests("d1r1h1", 2000), "");  // taken once

  // Ports 0 and 1 cross d1s2 and lose 10 of 64; ports 2 and 3 cross d1s1 and lose 1.
  nlohmann::json ports = nlohmann::json::array();
  for (int i = 0; i < 4; ++i) {
    bool bad = i < 2;
    ports.push_back(port_json(req["sports"][i].get<uint16_t>(), bad ? "100.65.1.3" : "100.65.1.1",
                              64, bad ? 54 : 63));
  }
  nlohmann::json results = {
      {"agent", "d1r1h1"},
      {"results",
       {{{"id", req["id"]}, {"dst", "10.1.2.2"}, {"dport", 9001}, {"ports", ports}},
        {{"id", "d1-999"}, {"dst", "10.1.2.2"}, {"dport", 9001}, {"ports", ports}}}}};
  std::string error, field;
  std::size_t ignored = 0;
  ASSERT_TRUE(c.add_results(results, &f.topo, 3000, &error, &field, &ignored)) << error;
  EXPECT_EQ(ignored, 1u);  // unknown id
  // The same id again (a retried upload) is not counted twice.
  ASSERT_TRUE(c.add_results(results, &f.topo, 3000, &error, &field, &ignored));
  EXPECT_EQ(ignored, 2u);

  auto t = c.traces(4000);
  ASSERT_EQ(t.count("d1"), 1u);
  ASSERT_EQ(t["d1"].spines.size(), 2u);
  EXPECT_EQ(t["d1"].spines[0].spine, "d1s1");
  EXPECT_EQ(t["d1"].spines[0].probes, 128u);
  EXPECT_EQ(t["d1"].spines[0].lost, 2u);
  EXPECT_EQ(t["d1"].spines[1].spine, "d1s2");
  EXPECT_EQ(t["d1"].spines[1].lost, 20u);
  EXPECT_EQ(t["d1"].evidence["pairs"], nlohmann::json({"d1r1h1>d1r2h2"}));
  // Results age out.
  EXPECT_TRUE(c.traces(4000 + o.result_ttl_ms + 1).empty());
  // A new round after the interval.
  EXPECT_TRUE(c.due(61000, fabric));
  EXPECT_EQ(c.plan(61000, fabric, f.snap, f.topo), 2u);
}

TEST(Trace, CoordinatorRejectsMalformedResultsNamingTheField) {
  TraceCoordinator c;
  std::string error, field;
  std::size_t ignored = 0;
  auto bad = [&](const char* text) {
    EXPECT_FALSE(c.add_results(nlohmann::json::parse(text), nullptr, 0, &error, &field, &ignored))
        << text;
    return field;
  };
  EXPECT_EQ(bad(R"({"results":[]})"), "agent");
  EXPECT_EQ(bad(R"({"agent":"a","results":{}})"), "results");
  EXPECT_EQ(bad(R"({"agent":"a","results":[{"ports":[]}]})"), "results[0].id");
  EXPECT_EQ(bad(R"({"agent":"a","results":[{"id":"x","ports":[{"sport":1,"sent":1,"hops":[]}]}]})"),
            "results[0].ports[0].answered");
  EXPECT_EQ(
      bad(R"({"agent":"a","results":[{"id":"x","ports":[{"sport":1,"sent":1,"answered":2,"hops":[]}]}]})"),
      "results[0].ports[0].answered");
  EXPECT_EQ(
      bad(R"({"agent":"a","results":[{"id":"x","ports":[{"sport":1,"sent":1,"answered":1,"hops":[1]}]}]})"),
      "results[0].ports[0].hops");
}

TEST(Trace, NoRequestsWithoutRegisteredSpinesOrFailingPairs) {
  Fixture f;
  TraceCoordinator c;
  EXPECT_EQ(c.plan(1000, {"d1"}, f.snap, f.topo), 0u);  // no failing pairs
  f.fail("d1r1h1", "d1r2h2", 5);
  f.topo.dcs[0].devices.clear();
  EXPECT_EQ(c.plan(1000, {"d1"}, f.snap, f.topo), 0u);  // no spine addresses
  TraceOptions off;
  off.enabled = false;
  TraceCoordinator disabled(off);
  EXPECT_FALSE(disabled.due(1000, {"d1"}));
}

TEST(Trace, NarrowsDespiteReturnPathsCrossingTheLossySpine) {
  // 5 % loss each way on spine b of 2: ports whose SYN crosses b lose ~1-(0.95)(0.975) = 7.4 %,
  // the others ~2.5 % (their SYN-ACK crosses b half of the time). Both are far above 0.1 %.
  Verdict fabric;
  fabric.kind = "fabric_loss";
  fabric.type = ComponentType::kSpineLayer;
  fabric.dc = "d1";
  fabric.component = "spine_layer:d1";
  LocalizeOptions o;
  auto v = narrow_to_spine(fabric, {{"d1s1", 1000, 25}, {"d1s2", 1000, 74}}, o);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].component, "spine:d1/d1s2");
  // Equal loss on both: the layer, not a spine.
  EXPECT_TRUE(narrow_to_spine(fabric, {{"d1s1", 1000, 50}, {"d1s2", 1000, 55}}, o).empty());
  // Only one spine traced: nothing to compare with.
  EXPECT_TRUE(narrow_to_spine(fabric, {{"d1s2", 1000, 74}}, o).empty());
  // Too few probes to tell.
  EXPECT_TRUE(narrow_to_spine(fabric, {{"d1s1", 60, 1}, {"d1s2", 60, 4}}, o).empty());
}

}  // namespace
}  // namespace pingmesh::analyze
