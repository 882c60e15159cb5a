#include "controller/topology_service.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "controller/fake_store_test_util.hpp"
#include "pinglist/service.hpp"

namespace pingmesh::controller {
namespace {

using model::ValidationError;
using nlohmann::json;

net::IpAddress ip(std::string_view s) { return *net::IpAddress::parse(s); }
net::Cidr cidr(std::string_view s) { return *net::Cidr::parse(s); }

model::Datacenter dc(std::string name, model::DcMode mode) {
  model::Datacenter d;
  d.name = std::move(name);
  d.mode = mode;
  return d;
}

model::Rack rack(std::string dc, std::string name, std::vector<net::Cidr> cidrs = {}) {
  model::Rack r;
  r.dc = std::move(dc);
  r.name = std::move(name);
  r.cidrs = std::move(cidrs);
  return r;
}

model::Server server(std::string name, std::string dc, std::string rack,
                     std::vector<std::string_view> addrs) {
  model::Server s;
  s.name = std::move(name);
  s.dc = std::move(dc);
  s.rack = std::move(rack);
  for (auto a : addrs) s.addresses.push_back(ip(a));
  return s;
}

Heartbeat hb(std::string name, std::vector<std::string_view> addrs, std::string hint = "") {
  Heartbeat h;
  h.name = std::move(name);
  h.hostname = h.name;
  h.version = "1.2.3";
  for (auto a : addrs) h.addresses.push_back(ip(a));
  h.dc_hint = std::move(hint);
  return h;
}

/// A service over a fake store with a clock the test moves.
class TopologyServiceTest : public ::testing::Test {
 protected:
  TopologyServiceTest() { open(); }

  void open() {
    service.reset();
    TopologyServiceOptions o;
    o.background = false;
    o.now_ms = [this] { return now_ms.load(); };
    service = std::make_unique<TopologyService>(&store, &pinglists, o);
  }

  /// One rack-mode DC "east" (racks r1, r2) and one switch-mode DC "west" (switches s1 with an
  /// IPv4 and an IPv6 prefix, s2 with an IPv4 prefix).
  void seed() {
    service->create_dc(dc("east", model::DcMode::kRack));
    service->create_rack(rack("east", "r1"));
    service->create_rack(rack("east", "r2"));
    service->create_dc(dc("west", model::DcMode::kSwitch));
    service->create_rack(rack("west", "s1", {cidr("10.1.0.0/24"), cidr("fd00:1::/64")}));
    service->create_rack(rack("west", "s2", {cidr("10.2.0.0/24")}));
    service->create_server(server("e1", "east", "r1", {"10.0.0.1"}));
    service->create_server(server("e2", "east", "r2", {"10.0.0.2"}));
  }

  testing::FakeStore store;
  pinglist::PinglistService pinglists;
  std::atomic<int64_t> now_ms{1'000'000'000};
  std::unique_ptr<TopologyService> service;
};

TEST_F(TopologyServiceTest, DatacenterCrudAndCascadingDelete) {
  seed();
  EXPECT_EQ(service->get_dc("east").mode, model::DcMode::kRack);
  EXPECT_THROW(service->create_dc(dc("east", model::DcMode::kSwitch)), ServiceError);

  auto patched = service->patch_dc("east", json{{"rack_ratio", 0.5}, {"description", "main"}});
  EXPECT_EQ(patched.rack_ratio, 0.5);
  EXPECT_EQ(patched.description, "main");
  EXPECT_EQ(patched.mode, model::DcMode::kRack);  // untouched fields keep their value
  EXPECT_EQ(store.data.dcs[0].rack_ratio, 0.5);   // written through

  auto replaced = dc("east", model::DcMode::kRack);
  replaced.interval_ms = 20000;
  EXPECT_EQ(service->replace_dc("east", replaced).rack_ratio, 1.0);
  EXPECT_THROW(service->replace_dc("east", dc("other", model::DcMode::kRack)), ValidationError);

  model::Rule r;
  r.name = "east-tcp";
  r.level = model::Level::kIntraDc;
  r.src_dc = "east";
  service->create_rule(r);
  service->delete_dc("east");
  auto t = service->snapshot();
  EXPECT_EQ(t->dcs.size(), 1u);
  EXPECT_TRUE(
      std::none_of(t->racks.begin(), t->racks.end(), [](const auto& x) { return x.dc == "east"; }));
  EXPECT_TRUE(t->servers.empty());
  EXPECT_THROW(service->get_rule("east-tcp"), ServiceError);
  EXPECT_THROW(service->get_dc("east"), ServiceError);
  EXPECT_EQ(store.data.dcs.size(), 1u);
  EXPECT_TRUE(store.data.servers.empty());
}

TEST_F(TopologyServiceTest, RejectedChangesChangeNothing) {
  seed();
  auto before = service->snapshot();
  int writes = store.writes;
  // Unknown rack in a rack-mode DC: the field is named relative to the server.
  try {
    service->create_server(server("e3", "east", "nope", {"10.0.0.3"}));
    FAIL() << "expected ValidationError";
  } catch (const ValidationError& e) {
    EXPECT_EQ(e.field(), "rack");
  }
  // Duplicate address.
  try {
    service->create_server(server("e3", "east", "r1", {"10.0.0.1"}));
    FAIL() << "expected ValidationError";
  } catch (const ValidationError& e) {
    EXPECT_EQ(e.field(), "addresses[0]");
  }
  // Overlapping switch CIDR.
  EXPECT_THROW(service->create_rack(rack("west", "s3", {cidr("10.1.0.0/16")})), ValidationError);
  // A patch with a bad value.
  EXPECT_THROW(service->patch_dc("east", json{{"interval_ms", 5}}), ValidationError);
  EXPECT_THROW(service->patch_dc("east", json{{"bogus", 1}}), ValidationError);
  // Rule naming an unknown DC.
  model::Rule r;
  r.name = "x";
  r.src_dc = "mars";
  EXPECT_THROW(service->create_rule(r), ValidationError);
  EXPECT_EQ(service->snapshot(), before);
  EXPECT_EQ(store.writes, writes);

  // A store failure leaves the in-memory topology as it was.
  store.fail = true;
  EXPECT_THROW(service->create_server(server("e3", "east", "r1", {"10.0.0.3"})),
               topology::StoreError);
  EXPECT_EQ(service->snapshot(), before);
  EXPECT_THROW(service->get_server("e3"), ServiceError);
}

TEST_F(TopologyServiceTest, SwitchModePlacesByCidrV4AndV6) {
  seed();
  auto a = service->heartbeat(hb("w1", {"10.2.0.5"}));
  EXPECT_TRUE(a.created);
  EXPECT_EQ(a.dc, "west");
  EXPECT_EQ(a.rack, "s2");
  auto b = service->heartbeat(hb("w2", {"fd00:1::5"}));
  EXPECT_EQ(b.rack, "s1");
  EXPECT_EQ(service->get_server("w2").dc, "west");
  EXPECT_EQ(store.data.servers.size(), 4u);

  // No switch CIDR holds the address: 422 on addresses, nothing created.
  try {
    service->heartbeat(hb("w3", {"192.168.1.1"}));
    FAIL() << "expected ValidationError";
  } catch (const ValidationError& e) {
    EXPECT_EQ(e.field(), "addresses");
  }
  EXPECT_THROW(service->get_server("w3"), ServiceError);

  // The agent moved: its new address re-places it under the other switch.
  auto moved = service->heartbeat(hb("w1", {"10.1.0.9", "fd00:1::9"}));
  EXPECT_FALSE(moved.created);
  EXPECT_TRUE(moved.changed);
  EXPECT_EQ(moved.rack, "s1");
  EXPECT_EQ(service->get_server("w1").addresses.size(), 2u);

  // An unknown DC hint is a validation error; a rack-mode hint means "not registered".
  EXPECT_THROW(service->heartbeat(hb("w4", {"10.2.0.6"}, "mars")), ValidationError);
  EXPECT_THROW(service->heartbeat(hb("w4", {"10.2.0.6"}, "east")), ServiceError);

  // Without s2 nothing holds 10.2.0.7; a new switch over it places the next heartbeat.
  service->delete_rack("west", "s2");
  EXPECT_THROW(service->heartbeat(hb("w5", {"10.2.0.7"})), ValidationError);
  service->create_rack(rack("west", "s2b", {cidr("10.2.0.0/25")}));
  EXPECT_EQ(service->heartbeat(hb("w5", {"10.2.0.7"})).rack, "s2b");
}

TEST_F(TopologyServiceTest, SwitchDeletionKeepsServersUnplaced) {
  seed();
  service->heartbeat(hb("w1", {"10.2.0.5"}));
  service->delete_rack("west", "s2");
  auto s = service->get_server("w1");
  EXPECT_EQ(s.rack, "");
  service->create_rack(rack("west", "s9", {cidr("10.2.0.0/24")}));
  EXPECT_EQ(service->get_server("w1").rack, "s9");
  EXPECT_EQ(store.load().servers.size(), 3u);
}

TEST_F(TopologyServiceTest, RackModeHeartbeatNeedsRegistration) {
  seed();
  try {
    service->heartbeat(hb("ghost", {"10.0.0.99"}, "east"));
    FAIL() << "expected ServiceError";
  } catch (const ServiceError& e) {
    EXPECT_EQ(e.kind(), ServiceError::Kind::kNotFound);
  }
  // Only rack-mode DCs: unknown servers are "not registered" (404), not a placement error.
  service->delete_dc("west");
  EXPECT_THROW(service->heartbeat(hb("ghost", {"10.0.0.99"})), ServiceError);

  auto r = service->heartbeat(hb("e1", {"10.0.0.1"}));
  EXPECT_EQ(r.server, "e1");
  EXPECT_EQ(r.rack, "r1");
  // Matched by address when the agent uses another name.
  auto by_addr = service->heartbeat(hb("e2.example.com", {"10.0.0.2"}));
  EXPECT_EQ(by_addr.server, "e2");
  // Rack mode never rewrites registered addresses.
  service->heartbeat(hb("e1", {"10.0.0.1", "10.0.0.50"}));
  EXPECT_EQ(service->get_server("e1").addresses.size(), 1u);
  EXPECT_THROW(service->heartbeat(hb("bad name!", {})), ValidationError);
}

TEST_F(TopologyServiceTest, LivenessFollowsTheInjectedClock) {
  seed();
  service->patch_settings(json{{"liveness_timeout_s", 30}});
  auto t = service->snapshot();
  auto alive = service->liveness(*t);
  EXPECT_EQ(std::count(alive.begin(), alive.end(), true), 0);
  EXPECT_FALSE(service->tick());  // nothing changed

  service->heartbeat(hb("e1", {}));
  EXPECT_EQ(service->get_server("e1").last_seen_ms, now_ms.load());
  EXPECT_EQ(service->get_server("e1").agent_version, "1.2.3");
  alive = service->liveness(*t);
  ASSERT_EQ(alive.size(), t->servers.size());
  for (std::size_t i = 0; i < t->servers.size(); ++i) {
    EXPECT_EQ(alive[i], t->servers[i].name == "e1") << t->servers[i].name;
  }
  auto generation = pinglists.generation();
  EXPECT_TRUE(service->tick());  // e1 came alive: regenerate
  EXPECT_EQ(pinglists.generation(), generation + 1);
  EXPECT_TRUE(pinglists.summary("e1").alive);
  EXPECT_FALSE(service->tick());

  now_ms += 30'000;  // exactly the timeout: still alive
  EXPECT_TRUE(service->alive(service->get_server("e1")));
  EXPECT_FALSE(service->tick());
  now_ms += 1;
  EXPECT_FALSE(service->alive(service->get_server("e1")));
  EXPECT_TRUE(service->tick());
  EXPECT_FALSE(pinglists.summary("e1").alive);
  EXPECT_EQ(service->status().alive, 0u);
}

TEST_F(TopologyServiceTest, HeartbeatsAreFlushedInBatchesAndSurviveRestart) {
  seed();
  service->heartbeat(hb("e1", {}));
  service->heartbeat(hb("e2", {}));
  EXPECT_EQ(store.heartbeat_writes, 0);  // not written per heartbeat
  EXPECT_EQ(store.data.servers[0].last_seen_ms, 0);
  store.fail = true;
  EXPECT_EQ(service->flush_heartbeats(), 0u);  // failed: kept for the next flush
  EXPECT_EQ(service->flush_heartbeats(), 2u);
  EXPECT_EQ(store.heartbeat_writes, 1);
  EXPECT_EQ(service->flush_heartbeats(), 0u);
  service->heartbeat(hb("e1", {}));
  open();  // the destructor flushes; the new service loads last_seen from the store
  EXPECT_EQ(store.heartbeat_writes, 2);
  EXPECT_EQ(service->status().alive, 2u);
  EXPECT_EQ(service->get_server("e1").last_seen_ms, now_ms.load());
}

TEST_F(TopologyServiceTest, KillSwitchIsStoredAndReported) {
  seed();
  service->set_stopped("", true);
  service->set_stopped("east", true);
  EXPECT_THROW(service->set_stopped("mars", true), ServiceError);
  auto st = service->status();
  EXPECT_TRUE(st.stopped);
  EXPECT_EQ(st.stopped_dcs, std::vector<std::string>{"east"});
  EXPECT_EQ(st.servers, 2u);
  EXPECT_TRUE(pinglists.summary("e1").stopped);

  open();  // restart on the same store
  st = service->status();
  EXPECT_TRUE(st.stopped);
  EXPECT_EQ(st.stopped_dcs, std::vector<std::string>{"east"});
  service->set_stopped("", false);
  EXPECT_FALSE(service->status().stopped);
  EXPECT_TRUE(pinglists.summary("e1").stopped);  // east still stopped
  service->set_stopped("east", false);
  EXPECT_FALSE(pinglists.summary("e1").stopped);
}

TEST_F(TopologyServiceTest, BulkUpsertIsAllOrNothing) {
  seed();
  auto before = service->snapshot();
  std::vector<model::Server> batch{server("b1", "east", "r1", {"10.0.1.1"}),
                                   server("b2", "east", "r1", {"10.0.0.1"})};  // e1's address
  try {
    service->upsert_servers(batch);
    FAIL() << "expected ValidationError";
  } catch (const ValidationError& e) {
    EXPECT_EQ(e.field(), "[1].addresses[0]");
  }
  EXPECT_EQ(service->snapshot(), before);
  batch[1].addresses = {ip("10.0.1.2")};
  batch.push_back(server("e1", "east", "r2", {"10.0.0.1"}));  // existing: replaced
  auto r = service->upsert_servers(batch);
  EXPECT_EQ(r.created, 2u);
  EXPECT_EQ(r.updated, 1u);
  EXPECT_EQ(service->get_server("e1").rack, "r2");
  EXPECT_EQ(store.data.servers.size(), 4u);
  batch.push_back(batch[0]);
  EXPECT_THROW(service->upsert_servers(batch), ValidationError);  // duplicate in the request
}

TEST_F(TopologyServiceTest, RackDeletionInRackModeDeletesItsServers) {
  seed();
  service->delete_rack("east", "r1");
  EXPECT_THROW(service->get_server("e1"), ServiceError);
  EXPECT_EQ(service->get_server("e2").rack, "r2");
  EXPECT_THROW(service->delete_rack("east", "r1"), ServiceError);
  EXPECT_THROW(service->list_racks("mars"), ServiceError);
}

TEST_F(TopologyServiceTest, ImportReplacesEverythingAndDryRunNothing) {
  seed();
  model::Topology t;
  t.dcs.push_back(dc("north", model::DcMode::kRack));
  t.racks.push_back(rack("north", "n1"));
  t.servers.push_back(server("n-1", "north", "n1", {"10.9.0.1"}));
  t.rules = model::default_rules();
  auto before = service->snapshot();
  service->import(t, /*dry_run=*/true);
  EXPECT_EQ(service->snapshot(), before);
  service->import(t);
  EXPECT_EQ(service->snapshot()->dcs.size(), 1u);
  EXPECT_EQ(store.data.servers.size(), 1u);
  t.servers.push_back(server("n-2", "mars", "n1", {"10.9.0.2"}));
  EXPECT_THROW(service->import(t), ValidationError);
  EXPECT_EQ(service->snapshot()->servers.size(), 1u);
}

TEST_F(TopologyServiceTest, ConcurrentHeartbeatsAndChanges) {
  seed();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 25; ++i) {
        auto name = "w-" + std::to_string(t) + "-" + std::to_string(i);
        auto addr = "10.2.0." + std::to_string(t * 25 + i + 1);
        service->heartbeat(hb(name, {addr}));
        service->heartbeat(hb("e1", {}));
      }
    });
  }
  threads.emplace_back([this] {
    for (int i = 0; i < 20; ++i) {
      service->patch_dc("east", json{{"description", "d" + std::to_string(i)}});
      service->tick();
    }
  });
  for (auto& th : threads) th.join();
  EXPECT_EQ(service->snapshot()->servers.size(), 102u);
  EXPECT_EQ(service->get_dc("east").description, "d19");
  service->tick();  // servers created by heartbeats reach the pinglists at the next check
  EXPECT_EQ(pinglists.summary("w-3-24").alive, true);
  EXPECT_EQ(store.data.servers.size(), 102u);
}

TEST(PlaceByAddress, PicksTheSwitchHoldingAnyAddress) {
  model::Topology t;
  t.dcs.push_back(dc("w", model::DcMode::kSwitch));
  t.racks.push_back(rack("w", "a", {cidr("10.0.0.0/24")}));
  t.racks.push_back(rack("w", "b", {cidr("fd00::/64")}));
  t.racks.push_back(rack("other", "c", {cidr("10.9.0.0/24")}));
  EXPECT_EQ(place_by_address(t, "w", {ip("fd00::1")}), "b");
  EXPECT_EQ(place_by_address(t, "w", {ip("192.0.2.1"), ip("10.0.0.7")}), "a");
  EXPECT_EQ(place_by_address(t, "w", {ip("10.9.0.1")}), "");  // another DC's switch
}

}  // namespace
}  // namespace pingmesh::controller
