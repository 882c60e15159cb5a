#include "pinglist/generator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "model/pinglist.hpp"
#include "pinglist/test_topology.hpp"

namespace pingmesh::pinglist {
namespace {

using model::Level;
using testing::make_topology;

constexpr int64_t kNow = 1000;

Plan plan_of(const model::Topology& t) {
  auto shared = std::make_shared<const model::Topology>(t);
  return generate(shared, liveness_at(*shared, kNow));
}

std::map<Level, int> level_counts(const model::Pinglist& p) {
  std::map<Level, int> out;
  for (const auto& e : p.entries) out[e.level]++;
  return out;
}

model::Pinglist list_of(const Plan& plan, std::string_view name) {
  return pinglist_of(plan, plan.index.at(name));
}

std::set<std::string> chosen(const Plan& plan) {
  std::set<std::string> out;
  for (uint32_t k = 0; k < plan.servers.size(); ++k) {
    if (plan.server_slot[k] >= 0) out.insert(plan.servers[k]->name);
  }
  return out;
}

TEST(Generator, EntryCountsPerLevel) {
  auto t = make_topology(2, 3, 4);
  for (auto& dc : t.dcs) dc.inter_dc_servers = 2;
  auto plan = plan_of(t);
  int reps = 0;
  for (uint32_t k = 0; k < plan.servers.size(); ++k) {
    auto p = pinglist_of(plan, k);
    auto counts = level_counts(p);
    EXPECT_EQ(counts[Level::kIntraRack], 3) << p.server;  // the 3 other servers of the rack
    EXPECT_EQ(counts[Level::kIntraDc], 2) << p.server;    // server i of each of 2 other racks
    if (plan.is_rep[k]) {
      ++reps;
      EXPECT_EQ(counts[Level::kInterDc], 2) << p.server;  // every rep of the other DC
    } else {
      EXPECT_EQ(counts[Level::kInterDc], 0) << p.server;
    }
    EXPECT_EQ(p.entries.size(), plan.entry_count[k]);
  }
  EXPECT_EQ(reps, 4);
}

TEST(Generator, BothDirectionsAndNoSelfProbes) {
  auto t = make_topology(2, 4, 5);
  auto plan = plan_of(t);
  std::set<std::tuple<std::string, std::string, Level>> edges;
  for (uint32_t k = 0; k < plan.servers.size(); ++k) {
    auto p = pinglist_of(plan, k);
    for (const auto& e : p.entries) {
      EXPECT_NE(e.target, p.server);
      edges.emplace(p.server, e.target, e.level);
    }
  }
  for (const auto& [a, b, level] : edges) {
    EXPECT_TRUE(edges.count({b, a, level})) << a << " -> " << b << " has no reverse";
  }
}

TEST(Generator, LabelsAndParametersComeFromTheDc) {
  auto t = make_topology(1, 2, 2);
  t.dcs[0].probes = {{model::Protocol::kTcp, 9001, std::nullopt},
                     {model::Protocol::kUdp, 9001, uint8_t{46}},
                     {model::Protocol::kIcmp, 0, std::nullopt}};
  t.dcs[0].interval_ms = 20000;
  t.dcs[0].payload_bytes = 1000;
  t.dcs[0].dscp = 8;
  auto plan = plan_of(t);
  auto p = list_of(plan, "dc0-r0-s0");
  EXPECT_EQ(p.dc, "dc0");
  EXPECT_EQ(p.rack, "dc0-r0");
  ASSERT_EQ(p.entries.size(), 6u);  // 1 intra-rack + 1 intra-dc target, 3 probe kinds each
  const auto& udp = p.entries[1];
  EXPECT_EQ(udp.target, "dc0-r0-s1");
  EXPECT_EQ(udp.protocol, model::Protocol::kUdp);
  EXPECT_EQ(udp.dscp, 46);
  EXPECT_EQ(udp.interval_ms, 20000u);
  EXPECT_EQ(udp.payload_bytes, 1000u);
  EXPECT_EQ(p.entries[0].dscp, 8);
  EXPECT_EQ(p.entries[2].port, 0);
  EXPECT_EQ(p.entries[3].level, Level::kIntraDc);
  EXPECT_EQ(p.entries[3].dst_rack, "dc0-r1");
}

TEST(Generator, RatioRounding) {
  EXPECT_EQ(choose_count(0.3, 10), 3u);
  EXPECT_EQ(choose_count(0.25, 10), 3u);
  EXPECT_EQ(choose_count(0.01, 10), 1u);
  EXPECT_EQ(choose_count(1.0, 7), 7u);
  EXPECT_EQ(choose_count(0.5, 0), 0u);
  auto t = make_topology(1, 10, 10);
  t.dcs[0].rack_ratio = 0.25;
  t.dcs[0].server_ratio = 0.5;
  auto plan = plan_of(t);
  EXPECT_EQ(plan.dcs[0].racks.size(), 3u);
  for (const auto& r : plan.dcs[0].racks) EXPECT_EQ(r.slots.size(), 5u);
  EXPECT_EQ(chosen(plan).size(), 15u);
  // Servers not chosen get an empty, not-stopped pinglist.
  for (uint32_t k = 0; k < plan.servers.size(); ++k) {
    if (plan.server_slot[k] < 0) {
      auto p = pinglist_of(plan, k);
      EXPECT_TRUE(p.entries.empty());
      EXPECT_FALSE(p.stopped);
    }
  }
}

TEST(Generator, IthServerPairingWithUnequalRacks) {
  auto t = make_topology(1, 2, 4);
  // Rack 1 has only 2 servers: remove s2, s3.
  std::erase_if(t.servers, [](const model::Server& s) {
    return s.name == "dc0-r1-s2" || s.name == "dc0-r1-s3";
  });
  auto plan = plan_of(t);
  const auto& r0 = plan.dcs[0].racks[0].name == "dc0-r0" ? plan.dcs[0].racks[0]
                                                          : plan.dcs[0].racks[1];
  const auto& r1 = plan.dcs[0].racks[0].name == "dc0-r0" ? plan.dcs[0].racks[1]
                                                          : plan.dcs[0].racks[0];
  ASSERT_EQ(r0.slots.size(), 4u);
  ASSERT_EQ(r1.slots.size(), 2u);
  for (std::size_t i = 0; i < r0.slots.size(); ++i) {
    auto p = pinglist_of(plan, r0.slots[i]);
    std::vector<std::string> intra_dc;
    for (const auto& e : p.entries) {
      if (e.level == Level::kIntraDc) intra_dc.push_back(e.target);
    }
    ASSERT_EQ(intra_dc.size(), 1u);
    // Server i of the bigger rack probes server (i mod 2) of the smaller one.
    EXPECT_EQ(intra_dc[0], plan.servers[r1.slots[i % 2]]->name);
  }
  for (std::size_t i = 0; i < r1.slots.size(); ++i) {
    auto p = pinglist_of(plan, r1.slots[i]);
    EXPECT_EQ(level_counts(p)[Level::kIntraDc], 1);
  }
}

model::Rule inter_rule(std::string name, std::string src, std::string dst, model::RuleAction a,
                       std::vector<model::ProbeSpec> probes = {}) {
  model::Rule r;
  r.name = std::move(name);
  r.level = Level::kInterDc;
  r.src_dc = std::move(src);
  r.dst_dc = std::move(dst);
  r.action = a;
  r.probes = std::move(probes);
  return r;
}

std::set<std::string> inter_targets_dcs(const Plan& plan, std::string_view src_dc,
                                        model::Protocol proto) {
  std::set<std::string> out;
  for (uint32_t k = 0; k < plan.servers.size(); ++k) {
    if (plan.servers[k]->dc != src_dc) continue;
    for (const auto& e : pinglist_of(plan, k).entries) {
      if (e.level == Level::kInterDc && e.protocol == proto) out.insert(e.dst_dc);
    }
  }
  return out;
}

TEST(Generator, CustomInterDcRules) {
  auto t = make_topology(3, 2, 2);
  auto base = plan_of(t);
  EXPECT_EQ(inter_targets_dcs(base, "dc0", model::Protocol::kTcp),
            (std::set<std::string>{"dc1", "dc2"}));

  auto disabled = t;
  disabled.rules.push_back(inter_rule("no-0-1", "dc0", "dc1", model::RuleAction::kDisable));
  auto p1 = plan_of(disabled);
  EXPECT_EQ(inter_targets_dcs(p1, "dc0", model::Protocol::kTcp), (std::set<std::string>{"dc2"}));
  // Symmetric by default: dc1 does not probe dc0 either.
  EXPECT_EQ(inter_targets_dcs(p1, "dc1", model::Protocol::kTcp), (std::set<std::string>{"dc2"}));

  auto replaced = t;
  replaced.rules.push_back(inter_rule("udp-0-2", "dc0", "dc2", model::RuleAction::kReplace,
                                      {{model::Protocol::kUdp, 9001, std::nullopt}}));
  auto p2 = plan_of(replaced);
  EXPECT_EQ(inter_targets_dcs(p2, "dc0", model::Protocol::kTcp), (std::set<std::string>{"dc1"}));
  EXPECT_EQ(inter_targets_dcs(p2, "dc0", model::Protocol::kUdp), (std::set<std::string>{"dc2"}));

  auto added = t;
  added.rules.push_back(inter_rule("icmp-0-1", "dc0", "dc1", model::RuleAction::kAdd,
                                   {{model::Protocol::kIcmp, 0, std::nullopt}}));
  added.rules.back().symmetric = false;
  auto p3 = plan_of(added);
  EXPECT_EQ(inter_targets_dcs(p3, "dc0", model::Protocol::kTcp),
            (std::set<std::string>{"dc1", "dc2"}));
  EXPECT_EQ(inter_targets_dcs(p3, "dc0", model::Protocol::kIcmp), (std::set<std::string>{"dc1"}));
  EXPECT_TRUE(inter_targets_dcs(p3, "dc1", model::Protocol::kIcmp).empty());

  // Wildcard default disabled, one pair added back.
  auto only_pair = t;
  for (auto& r : only_pair.rules) {
    if (r.level == Level::kInterDc) r.action = model::RuleAction::kDisable;
  }
  only_pair.rules.push_back(inter_rule("only-1-2", "dc1", "dc2", model::RuleAction::kAdd));
  auto p4 = plan_of(only_pair);
  EXPECT_TRUE(inter_targets_dcs(p4, "dc0", model::Protocol::kTcp).empty());
  EXPECT_EQ(inter_targets_dcs(p4, "dc2", model::Protocol::kTcp), (std::set<std::string>{"dc1"}));
}

TEST(Generator, IntraLevelRulesPerDc) {
  auto t = make_topology(2, 2, 2);
  model::Rule r;
  r.name = "dc1-no-intra-rack";
  r.level = Level::kIntraRack;
  r.src_dc = "dc1";
  r.action = model::RuleAction::kDisable;
  t.rules.push_back(r);
  auto plan = plan_of(t);
  EXPECT_EQ(level_counts(list_of(plan, "dc0-r0-s0"))[Level::kIntraRack], 1);
  EXPECT_EQ(level_counts(list_of(plan, "dc1-r0-s0"))[Level::kIntraRack], 0);
  EXPECT_EQ(level_counts(list_of(plan, "dc1-r0-s0"))[Level::kIntraDc], 1);
}

TEST(Generator, Ipv6AndAddressFamilies) {
  auto t = make_topology(1, 1, 3, /*ipv6=*/true);
  auto plan = plan_of(t);
  auto p = list_of(plan, "dc0-r0-s0");
  ASSERT_EQ(p.entries.size(), 4u);  // 2 targets × (v4, v6)
  EXPECT_TRUE(p.entries[0].address.is_v4());
  EXPECT_TRUE(p.entries[1].address.is_v6());
  EXPECT_EQ(p.entries[1].address.to_string(), "fd00::1");

  t.dcs[0].ipv4 = false;
  auto v6only = plan_of(t);
  auto q = list_of(v6only, "dc0-r0-s0");
  ASSERT_EQ(q.entries.size(), 2u);
  for (const auto& e : q.entries) EXPECT_TRUE(e.address.is_v6());

  // A v4-only source never gets v6 targets.
  auto t2 = make_topology(1, 1, 3, true);
  t2.servers[0].addresses.resize(1);
  auto plan2 = plan_of(t2);
  for (const auto& e : list_of(plan2, t2.servers[0].name).entries) EXPECT_TRUE(e.address.is_v4());
}

TEST(Generator, PeerCapKeepsWiderLevelsFirst) {
  auto t = make_topology(2, 3, 5);
  for (auto& dc : t.dcs) {
    dc.inter_dc_servers = 2;
    dc.max_peers = 4;
  }
  auto plan = plan_of(t);
  for (uint32_t k = 0; k < plan.servers.size(); ++k) {
    auto p = pinglist_of(plan, k);
    std::set<std::string> targets;
    for (const auto& e : p.entries) targets.insert(e.target);
    EXPECT_LE(targets.size(), 4u);
    auto counts = level_counts(p);
    if (plan.is_rep[k]) {
      EXPECT_EQ(counts[Level::kInterDc], 2);
      EXPECT_EQ(counts[Level::kIntraDc], 2);
      EXPECT_EQ(counts[Level::kIntraRack], 0);
    } else {
      EXPECT_EQ(counts[Level::kIntraDc], 2);
      EXPECT_EQ(counts[Level::kIntraRack], 2);
    }
  }
}

TEST(Generator, DeterministicWhateverTheInputOrder) {
  auto t = make_topology(3, 4, 6, true);
  t.dcs[1].server_ratio = 0.5;
  t.dcs[2].rack_ratio = 0.5;
  auto a = plan_of(t);
  std::mt19937 rng(42);
  std::shuffle(t.servers.begin(), t.servers.end(), rng);
  std::shuffle(t.racks.begin(), t.racks.end(), rng);
  std::shuffle(t.dcs.begin(), t.dcs.end(), rng);
  auto b = plan_of(t);
  ASSERT_EQ(a.servers.size(), b.servers.size());
  EXPECT_EQ(a.content_hash, b.content_hash);
  for (uint32_t k = 0; k < a.servers.size(); ++k) {
    EXPECT_EQ(model::to_xml(pinglist_of(a, k)), model::to_xml(pinglist_of(b, k)));
    EXPECT_EQ(model::to_json(pinglist_of(a, k)), model::to_json(pinglist_of(b, k)));
  }
}

TEST(Generator, DeadServerIsReplacedAndNothingElseChanges) {
  auto t = make_topology(1, 4, 10);
  t.dcs[0].server_ratio = 0.5;
  auto before = plan_of(t);
  auto chosen_before = chosen(before);
  ASSERT_EQ(chosen_before.size(), 20u);
  // Kill one chosen server: its heartbeat is older than the liveness timeout.
  const std::string victim = *chosen_before.begin();
  const uint32_t victim_index = before.index.at(victim);
  const int32_t victim_rack = before.server_rack[victim_index];
  const int32_t victim_slot = before.server_slot[victim_index];
  for (auto& s : t.servers) {
    if (s.name == victim) s.last_seen_ms = kNow - 1000LL * t.settings.liveness_timeout_s - 1;
  }
  auto after = plan_of(t);
  auto chosen_after = chosen(after);
  EXPECT_EQ(chosen_after.size(), 20u);  // the ratio holds
  EXPECT_FALSE(chosen_after.count(victim));
  std::vector<std::string> removed, added;
  std::set_difference(chosen_before.begin(), chosen_before.end(), chosen_after.begin(),
                      chosen_after.end(), std::back_inserter(removed));
  std::set_difference(chosen_after.begin(), chosen_after.end(), chosen_before.begin(),
                      chosen_before.end(), std::back_inserter(added));
  EXPECT_EQ(removed, std::vector<std::string>{victim});
  ASSERT_EQ(added.size(), 1u);
  // The substitute takes the dead server's slot; every other server keeps its slot.
  const uint32_t sub = after.index.at(added[0]);
  EXPECT_EQ(after.server_slot[sub], victim_slot);
  EXPECT_EQ(after.dcs[0].racks[static_cast<std::size_t>(after.server_rack[sub])].name,
            before.dcs[0].racks[static_cast<std::size_t>(victim_rack)].name);
  for (const auto& name : chosen_before) {
    if (name == victim) continue;
    EXPECT_EQ(before.server_slot[before.index.at(name)], after.server_slot[after.index.at(name)])
        << name;
  }
}

TEST(Generator, NeverSeenServersAreNeverChosen) {
  auto t = make_topology(1, 2, 3);
  t.servers[0].last_seen_ms = 0;
  t.servers[4].last_seen_ms = 0;
  auto plan = plan_of(t);
  auto c = chosen(plan);
  EXPECT_FALSE(c.count(t.servers[0].name));
  EXPECT_FALSE(c.count(t.servers[4].name));
  for (uint32_t k = 0; k < plan.servers.size(); ++k) {
    for (const auto& e : pinglist_of(plan, k).entries) {
      EXPECT_NE(e.target, t.servers[0].name);
      EXPECT_NE(e.target, t.servers[4].name);
    }
  }
  // A rack with no live server is replaced by another rack when the ratio allows.
  auto t2 = make_topology(1, 3, 2);
  t2.dcs[0].rack_ratio = 0.34;  // 2 of 3 racks
  auto p2 = plan_of(t2);
  ASSERT_EQ(p2.dcs[0].racks.size(), 2u);
  std::string dead_rack(p2.dcs[0].racks[0].name);
  for (auto& s : t2.servers) {
    if (s.rack == dead_rack) s.last_seen_ms = 0;
  }
  auto p3 = plan_of(t2);
  ASSERT_EQ(p3.dcs[0].racks.size(), 2u);
  for (const auto& r : p3.dcs[0].racks) EXPECT_NE(r.name, dead_rack);
}

TEST(Generator, KillSwitchGlobalAndPerDc) {
  auto t = make_topology(2, 2, 2);
  t.dcs[1].stopped = true;
  auto plan = plan_of(t);
  for (uint32_t k = 0; k < plan.servers.size(); ++k) {
    auto p = pinglist_of(plan, k);
    if (p.dc == "dc1") {
      EXPECT_TRUE(p.stopped);
      EXPECT_TRUE(p.entries.empty());
    } else {
      EXPECT_FALSE(p.stopped);
      for (const auto& e : p.entries) EXPECT_NE(e.dst_dc, "dc1");
    }
  }
  t.dcs[1].stopped = false;
  t.settings.stopped = true;
  auto all = plan_of(t);
  for (uint32_t k = 0; k < all.servers.size(); ++k) {
    auto p = pinglist_of(all, k);
    EXPECT_TRUE(p.stopped);
    EXPECT_TRUE(p.entries.empty());
  }
}

TEST(Generator, VersionChangesExactlyWhenTheRenderingDoes) {
  auto t = make_topology(2, 2, 3);
  auto a = plan_of(t);
  auto b = plan_of(t);
  EXPECT_EQ(a.version, b.version);
  t.servers[0].addresses[0] = *net::IpAddress::parse("10.9.9.9");
  auto c = plan_of(t);
  int changed = 0;
  for (uint32_t k = 0; k < a.servers.size(); ++k) {
    auto pa = pinglist_of(a, k);
    auto pc = pinglist_of(c, k);
    pa.version.clear();
    pc.version.clear();
    EXPECT_EQ(a.version[k] == c.version[k], pa == pc) << a.servers[k]->name;
    changed += a.version[k] != c.version[k];
  }
  // Server 0 is probed by its rack, its intra-DC peer and (as a rep) the other DC's reps.
  EXPECT_GT(changed, 2);
  EXPECT_LT(changed, static_cast<int>(a.servers.size()));
}

}  // namespace
}  // namespace pingmesh::pinglist
