#include "model/topology_json.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/document.hpp"

namespace pingmesh::model {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const ValidationLimits kLimits;

/// Runs `f`, expecting a ValidationError; returns it (fails the test if none is thrown).
template <typename F>
ValidationError error_of(F&& f) {
  try {
    f();
  } catch (const ValidationError& e) {
    return e;
  }
  ADD_FAILURE() << "no ValidationError thrown";
  return ValidationError("<none>", "<none>");
}

net::IpAddress ip(std::string_view s) { return *net::IpAddress::parse(s); }
net::Cidr cidr(std::string_view s) { return *net::Cidr::parse(s); }

Datacenter full_dc() {
  Datacenter dc;
  dc.name = "dc-1";
  dc.mode = DcMode::kSwitch;
  dc.probes = {
      {Protocol::kTcp, 9001, std::nullopt}, {Protocol::kIcmp, 0, 46}, {Protocol::kHttp, 8080, 10}};
  dc.interval_ms = 20000;
  dc.payload_bytes = 1200;
  dc.dscp = 8;
  dc.rack_ratio = 0.5;
  dc.server_ratio = 0.25;
  dc.inter_dc_servers = 8;
  dc.max_peers = 500;
  dc.ipv4 = true;
  dc.ipv6 = false;
  dc.stopped = true;
  dc.description = "west \"region\"";
  return dc;
}

Rule full_rule() {
  Rule r;
  r.name = "dc1-to-dc2";
  r.level = Level::kInterDc;
  r.src_dc = "dc1";
  r.dst_dc = "dc2";
  r.symmetric = false;
  r.action = RuleAction::kReplace;
  r.probes = {{Protocol::kUdp, 7000, 46}};
  r.interval_ms = 60000;
  r.payload_bytes = 64;
  return r;
}

// --- encoders -----------------------------------------------------------------------------

TEST(TopologyJsonTest, ProbeSpecShape) {
  EXPECT_EQ(to_json(ProbeSpec{Protocol::kTcp, 9001, 46}),
            json::parse(R"({"protocol":"tcp","port":9001,"dscp":46})"));
  EXPECT_EQ(to_json(ProbeSpec{Protocol::kIcmp, 0, std::nullopt}),
            json::parse(R"({"protocol":"icmp","port":0})"));
}

TEST(TopologyJsonTest, DatacenterShape) {
  json j = to_json(full_dc());
  EXPECT_EQ(j, json::parse(R"({
    "name":"dc-1","mode":"switch",
    "probes":[{"protocol":"tcp","port":9001},{"protocol":"icmp","port":0,"dscp":46},
              {"protocol":"http","port":8080,"dscp":10}],
    "interval_ms":20000,"payload_bytes":1200,"dscp":8,"rack_ratio":0.5,"server_ratio":0.25,
    "inter_dc_servers":8,"max_peers":500,"ipv4":true,"ipv6":false,"stopped":true,
    "description":"west \"region\"","devices":[]})"));
}

TEST(TopologyJsonTest, DatacenterDevicesRoundTripAndRejections) {
  Datacenter dc = full_dc();
  dc.devices = {{"d1s1", DeviceLayer::kSpine, {ip("100.65.1.1"), ip("fd01:1:1:1::2")}},
                {"d1r1t", DeviceLayer::kTor, {ip("100.65.1.0")}}};
  json j = to_json(dc);
  EXPECT_EQ(j["devices"], json::parse(R"([
      {"name":"d1s1","layer":"spine","addresses":["100.65.1.1","fd01:1:1:1::2"]},
      {"name":"d1r1t","layer":"tor","addresses":["100.65.1.0"]}])"));
  EXPECT_EQ(dc_from_json(j, kLimits), dc);
  // The layer defaults to spine.
  auto d = dc_from_json(
      json::parse(R"({"name":"d","devices":[{"name":"s","addresses":["10.0.0.1"]}]})"), kLimits);
  ASSERT_EQ(d.devices.size(), 1u);
  EXPECT_EQ(d.devices[0].layer, DeviceLayer::kSpine);

  auto field_of = [](const char* text) {
    return error_of([&] { dc_from_json(json::parse(text), kLimits); }).field();
  };
  EXPECT_EQ(field_of(R"({"name":"d","devices":{}})"), "devices");
  EXPECT_EQ(field_of(R"({"name":"d","devices":[{"name":"s"}]})"), "devices[0].addresses");
  EXPECT_EQ(field_of(R"({"name":"d","devices":[{"name":"s","addresses":[]}]})"),
            "devices[0].addresses");
  EXPECT_EQ(field_of(R"({"name":"d","devices":[{"name":"s","addresses":["10.0.0.300"]}]})"),
            "devices[0].addresses[0]");
  EXPECT_EQ(
      field_of(R"({"name":"d","devices":[{"name":"s","layer":"leaf","addresses":["10.0.0.1"]}]})"),
      "devices[0].layer");
  EXPECT_EQ(field_of(R"({"name":"d","devices":[{"name":"a b","addresses":["10.0.0.1"]}]})"),
            "devices[0].name");
  EXPECT_EQ(field_of(R"({"name":"d","devices":[{"name":"s","addresses":["10.0.0.1"],"x":1}]})"),
            "devices[0].x");
  EXPECT_EQ(field_of(R"({"name":"d","devices":[{"name":"s","addresses":["10.0.0.1"]},
                                                {"name":"s","addresses":["10.0.0.2"]}]})"),
            "devices[1].name");
  EXPECT_EQ(field_of(R"({"name":"d","devices":[{"name":"s","addresses":["10.0.0.1"]},
                                                {"name":"t","addresses":["10.0.0.1"]}]})"),
            "devices[1].addresses[0]");
}

TEST(TopologyJsonTest, RackServerRuleSettingsShapes) {
  Rack rack{"dc1", "r1", {cidr("10.0.1.0/24"), cidr("fd00:1::/64")}, "row 3"};
  EXPECT_EQ(to_json(rack), json::parse(R"({"dc":"dc1","name":"r1",
      "cidrs":["10.0.1.0/24","fd00:1::/64"],"description":"row 3"})"));

  Server s{"s1",         "dc1",         "r1",   {ip("10.0.1.5"), ip("fd00:1::5")},
           "s1.example", 1700000000000, "0.1.0"};
  EXPECT_EQ(to_json(s), json::parse(R"({"name":"s1","dc":"dc1","rack":"r1",
      "addresses":["10.0.1.5","fd00:1::5"],"hostname":"s1.example",
      "last_seen_ms":1700000000000,"agent_version":"0.1.0"})"));

  EXPECT_EQ(to_json(full_rule()), json::parse(R"({"name":"dc1-to-dc2","level":"inter-dc",
      "src_dc":"dc1","dst_dc":"dc2","symmetric":false,"action":"replace",
      "probes":[{"protocol":"udp","port":7000,"dscp":46}],"interval_ms":60000,
      "payload_bytes":64})"));
  Rule inherit = default_rules()[0];
  json rj = to_json(inherit);
  EXPECT_FALSE(rj.contains("interval_ms"));
  EXPECT_FALSE(rj.contains("payload_bytes"));
  EXPECT_EQ(rj["probes"], json::array());

  EXPECT_EQ(to_json(Settings{true, 120}),
            json::parse(R"({"stopped":true,"liveness_timeout_s":120})"));
}

// --- round trips --------------------------------------------------------------------------

TEST(TopologyJsonTest, RoundTripEveryType) {
  Datacenter dc = full_dc();
  EXPECT_EQ(dc_from_json(to_json(dc), kLimits), dc);
  Rack rack{"dc1", "r1", {cidr("10.0.1.0/24"), cidr("fd00:1::/64")}, "x"};
  EXPECT_EQ(rack_from_json(to_json(rack)), rack);
  Server s{"s1", "dc1", "r1", {ip("10.0.1.5"), ip("fd00:1::5")}, "h", 17, "v1"};
  EXPECT_EQ(server_from_json(to_json(s), nullptr, "", true), s);
  Rule r = full_rule();
  EXPECT_EQ(rule_from_json(to_json(r), kLimits), r);
  for (const Rule& d : default_rules()) EXPECT_EQ(rule_from_json(to_json(d), kLimits), d);
  Settings st{true, 300};
  EXPECT_EQ(settings_from_json(to_json(st)), st);
}

TEST(TopologyJsonTest, DefaultsComeFromStructInitialisers) {
  Datacenter dc = dc_from_json(json{{"name", "dc1"}}, kLimits);
  Datacenter expected;
  expected.name = "dc1";
  EXPECT_EQ(dc, expected);

  Rule r = rule_from_json(json{{"name", "r"}}, kLimits);
  Rule er;
  er.name = "r";
  EXPECT_EQ(r, er);

  EXPECT_EQ(settings_from_json(json::object()), Settings{});
}

TEST(TopologyJsonTest, ProbePortDefaultsByProtocol) {
  Datacenter dc = dc_from_json(json::parse(R"({"name":"d","probes":[
      {"protocol":"tcp"},{"protocol":"udp"},{"protocol":"http"},{"protocol":"icmp"}]})"),
                               kLimits);
  ASSERT_EQ(dc.probes.size(), 4u);
  EXPECT_EQ(dc.probes[0].port, kDefaultTcpPort);
  EXPECT_EQ(dc.probes[1].port, kDefaultUdpPort);
  EXPECT_EQ(dc.probes[2].port, kDefaultHttpPort);
  EXPECT_EQ(dc.probes[3].port, 0);
}

TEST(TopologyJsonTest, PatchDecodesOverBase) {
  Datacenter base = full_dc();
  Datacenter patched = dc_from_json(json{{"interval_ms", 30000}, {"ipv6", true}}, kLimits, &base);
  Datacenter expected = base;
  expected.interval_ms = 30000;
  expected.ipv6 = true;
  EXPECT_EQ(patched, expected);

  Rule rbase = full_rule();
  Rule rp = rule_from_json(json{{"interval_ms", nullptr}}, kLimits, &rbase);
  EXPECT_FALSE(rp.interval_ms.has_value());
  EXPECT_EQ(rp.payload_bytes, rbase.payload_bytes);

  Server sbase{"s1", "dc1", "r1", {ip("10.0.0.1")}, "h", 99, "v"};
  Server sp = server_from_json(json{{"hostname", "h2"}}, &sbase);
  EXPECT_EQ(sp.hostname, "h2");
  EXPECT_EQ(sp.last_seen_ms, 99);
  EXPECT_EQ(sp.addresses, sbase.addresses);

  Settings stbase{true, 60};
  EXPECT_EQ(settings_from_json(json{{"stopped", false}}, &stbase), (Settings{false, 60}));
}

// --- rejections ---------------------------------------------------------------------------

struct BadCase {
  const char* json_text;
  const char* field;
  const char* message_part;
};

TEST(TopologyJsonTest, DatacenterRejections) {
  const BadCase cases[] = {
      {R"({"name":"d","colour":"red"})", "colour", "unknown field"},
      {R"({"name":"d","probes":[{"protocol":"tcp","port":"80"}]})", "probes[0].port", "integer"},
      {R"({"name":"d","probes":[{"protocol":"tcp"},{"protocol":"tcp","port":0}]})",
       "probes[1].port", "1..65535"},
      {R"({"name":"d","probes":[{"protocol":"udp","port":70000}]})", "probes[0].port", "1..65535"},
      {R"({"name":"d","probes":[{"protocol":"icmp","port":7}]})", "probes[0].port", "0..0"},
      {R"({"name":"d","probes":[{"protocol":"sctp"}]})", "probes[0].protocol", "tcp, udp"},
      {R"({"name":"d","probes":[{"protocol":"tcp","dscp":64}]})", "probes[0].dscp", "0..63"},
      {R"({"name":"d","probes":[{"protocol":"tcp","bogus":1}]})", "probes[0].bogus", "unknown"},
      {R"({"name":"d","probes":[{"protocol":"tcp"},{"protocol":"tcp","port":9001}]})", "probes[1]",
       "duplicate of probes[0]"},
      {R"({"name":"d","probes":[]})", "probes", "at least one"},
      {R"({"name":"d","probes":{}})", "probes", "array"},
      {R"({"name":"d","probes":["tcp"]})", "probes[0]", "object"},
      {R"({"name":"d","interval_ms":9999})", "interval_ms", "10000..3600000"},
      {R"({"name":"d","interval_ms":3600001})", "interval_ms", "10000..3600000"},
      {R"({"name":"d","interval_ms":10000.5})", "interval_ms", "integer"},
      {R"({"name":"d","interval_ms":-1})", "interval_ms", "integer"},
      {R"({"name":"d","payload_bytes":65537})", "payload_bytes", "0..65536"},
      {R"({"name":"d","dscp":64})", "dscp", "0..63"},
      {R"({"name":"d","rack_ratio":0})", "rack_ratio", "(0, 1]"},
      {R"({"name":"d","server_ratio":1.5})", "server_ratio", "(0, 1]"},
      {R"({"name":"d","server_ratio":"1"})", "server_ratio", "(0, 1]"},
      {R"({"name":"d","inter_dc_servers":1001})", "inter_dc_servers", "0..1000"},
      {R"({"name":"d","max_peers":100001})", "max_peers", "0..100000"},
      {R"({"name":"d","ipv4":false,"ipv6":false})", "ipv6", "at least one"},
      {R"({"name":"d","ipv4":"yes"})", "ipv4", "true or false"},
      {R"({"name":"d","mode":"tor"})", "mode", "rack, switch"},
      {R"({"name":"d","description":5})", "description", "string"},
      {R"({"name":"*"})", "name", "[A-Za-z0-9._-]"},
      {R"({"name":"a b"})", "name", "[A-Za-z0-9._-]"},
      {R"({})", "name", "required"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json_text);
    auto e = error_of([&] { dc_from_json(json::parse(c.json_text), kLimits, nullptr, ""); });
    EXPECT_EQ(e.field(), c.field);
    EXPECT_THAT(e.message(), HasSubstr(c.message_part));
  }
  auto e = error_of([] { dc_from_json(json::array(), kLimits); });
  EXPECT_EQ(e.field(), "");
  EXPECT_THAT(e.message(), HasSubstr("object"));
}

TEST(TopologyJsonTest, PathPrefixesFieldNames) {
  auto e = error_of([] {
    dc_from_json(json::parse(R"({"name":"d","probes":[{"protocol":"tcp"},{"port":"80"}]})"),
                 kLimits, nullptr, "dcs[2]");
  });
  EXPECT_EQ(e.field(), "dcs[2].probes[1].port");
  EXPECT_THAT(e.what(), HasSubstr("dcs[2].probes[1].port: "));
}

TEST(TopologyJsonTest, LimitsLowerTheIntervalFloor) {
  ValidationLimits lab{.min_interval_ms = 100};
  EXPECT_EQ(dc_from_json(json{{"name", "d"}, {"interval_ms", 100}}, lab).interval_ms, 100u);
  EXPECT_EQ(error_of([&] {
              dc_from_json(json{{"name", "d"}, {"interval_ms", 99}}, lab);
            }).field(),
            "interval_ms");
  EXPECT_EQ(rule_from_json(json{{"name", "r"}, {"interval_ms", 100}}, lab).interval_ms, 100u);
}

TEST(TopologyJsonTest, RackRejections) {
  const BadCase cases[] = {
      {R"({"dc":"d","name":"r","cidrs":["10.0.1.5/24"]})", "cidrs[0]", "did you mean 10.0.1.0/24"},
      {R"({"dc":"d","name":"r","cidrs":["10.0.1.0/24","10.0.300.0/24"]})", "cidrs[1]",
       "not a CIDR"},
      {R"({"dc":"d","name":"r","cidrs":["10.0.1.0"]})", "cidrs[0]", "not a CIDR"},
      {R"({"dc":"d","name":"r","cidrs":[24]})", "cidrs[0]", "string"},
      {R"({"dc":"d","name":"r","cidrs":["10.0.1.0/24","10.0.1.0/24"]})", "cidrs[1]", "duplicate"},
      {R"({"name":"r"})", "dc", "required"},
      {R"({"dc":"d"})", "name", "required"},
      {R"({"dc":"d","name":"r","switch":"x"})", "switch", "unknown field"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json_text);
    auto e = error_of([&] { rack_from_json(json::parse(c.json_text)); });
    EXPECT_EQ(e.field(), c.field);
    EXPECT_THAT(e.message(), HasSubstr(c.message_part));
  }
}

TEST(TopologyJsonTest, ServerRejections) {
  const BadCase cases[] = {
      {R"({"name":"s","dc":"d","rack":"r","addresses":[]})", "addresses", "at least one"},
      {R"({"name":"s","dc":"d","rack":"r"})", "addresses", "at least one"},
      {R"({"name":"s","dc":"d","addresses":["10.0.0.256"]})", "addresses[0]", "not an IPv4"},
      {R"({"name":"s","dc":"d","addresses":["10.0.0.1","10.0.0.1"]})", "addresses[1]", "duplicate"},
      {R"({"name":"s","dc":"d","rack":"bad rack","addresses":["10.0.0.1"]})", "rack", "[A-Za"},
      {R"({"name":"s","dc":"d","addresses":["10.0.0.1"],"last_seen_ms":5})", "last_seen_ms",
       "read-only"},
      {R"({"name":"s","dc":"d","addresses":["10.0.0.1"],"agent_version":"1"})", "agent_version",
       "read-only"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json_text);
    auto e = error_of([&] { server_from_json(json::parse(c.json_text)); });
    EXPECT_EQ(e.field(), c.field);
    EXPECT_THAT(e.message(), HasSubstr(c.message_part));
  }
  Server s = server_from_json(
      json::parse(R"({"name":"s","dc":"d","addresses":["10.0.0.1"],"last_seen_ms":5,
                      "agent_version":"1.2"})"),
      nullptr, "", true);
  EXPECT_EQ(s.last_seen_ms, 5);
  EXPECT_EQ(s.agent_version, "1.2");
  EXPECT_EQ(s.rack, "");
  EXPECT_EQ(error_of([] {
              server_from_json(json::parse(R"({"name":"s","dc":"d","addresses":["10.0.0.1"],
                                                "last_seen_ms":-5})"),
                               nullptr, "", true);
            }).field(),
            "last_seen_ms");
}

TEST(TopologyJsonTest, RuleRejections) {
  const BadCase cases[] = {
      {R"({"name":"r","level":"intra-dc","dst_dc":"dc2"})", "dst_dc", "\"*\""},
      {R"({"name":"r","level":"intra-rack","dst_dc":"dc2"})", "dst_dc", "\"*\""},
      {R"({"name":"r","level":"inter-rack"})", "level", "intra-rack, intra-dc, inter-dc"},
      {R"({"name":"r","action":"remove"})", "action", "add, replace, disable"},
      {R"({"name":"r","src_dc":"a/b"})", "src_dc", "or \"*\""},
      {R"({"name":"r","interval_ms":5})", "interval_ms", "10000..3600000"},
      {R"({"name":"r","payload_bytes":70000})", "payload_bytes", "0..65536"},
      {R"({"name":"r","symmetric":1})", "symmetric", "true or false"},
      {R"({"name":"r","probes":[{"protocol":"icmp"},{"protocol":"icmp","port":0}]})", "probes[1]",
       "duplicate"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json_text);
    auto e =
        error_of([&] { rule_from_json(json::parse(c.json_text), kLimits, nullptr, "rules[4]"); });
    EXPECT_EQ(e.field(), std::string("rules[4].") + c.field);
    EXPECT_THAT(e.message(), HasSubstr(c.message_part));
  }
  Rule inter = rule_from_json(
      json::parse(R"({"name":"r","level":"inter-dc","dst_dc":"dc2","action":"disable"})"), kLimits);
  EXPECT_EQ(inter.dst_dc, "dc2");
  EXPECT_EQ(inter.action, RuleAction::kDisable);
}

TEST(TopologyJsonTest, SettingsRejections) {
  EXPECT_EQ(error_of([] {
              settings_from_json(json{{"liveness_timeout_s", 4}});
            }).field(),
            "liveness_timeout_s");
  EXPECT_EQ(error_of([] {
              settings_from_json(json{{"liveness_timeout_s", 86401}});
            }).field(),
            "liveness_timeout_s");
  EXPECT_EQ(error_of([] { settings_from_json(json{{"stopped", "no"}}); }).field(), "stopped");
  EXPECT_EQ(error_of([] {
              settings_from_json(json{{"x", 1}}, nullptr, "settings");
            }).field(),
            "settings.x");
}

// --- whole topology -----------------------------------------------------------------------

const char* kTopologyYaml = R"(
settings:
  liveness_timeout_s: 120
dcs:
  - name: dc1
    mode: rack
    probes: [{protocol: tcp, port: 9001}, {protocol: icmp}]
  - name: dc2
    mode: switch
    interval_ms: 30000
racks:
  - {dc: dc1, name: r1}
  - {dc: dc1, name: r2}
  - {dc: dc2, name: tor1, cidrs: [10.2.1.0/24, "fd00:2:1::/64"]}
  - {dc: dc2, name: tor2, cidrs: [10.2.2.0/24]}
servers:
  - {name: s1, dc: dc1, rack: r1, addresses: [10.1.1.1]}
  - {name: s2, dc: dc1, rack: r2, addresses: [10.1.2.1, "fd00:1:2::1"], hostname: s2.dc1}
  - {name: s3, dc: dc2, rack: tor1, addresses: ["fd00:2:1::3"]}
  - {name: s4, dc: dc2, addresses: [10.9.9.9]}
)";

Topology good_topology() {
  return topology_from_json(parse_document(kTopologyYaml, "t.yaml"), kLimits);
}

TEST(TopologyJsonTest, ImportYamlAndDefaultRules) {
  Topology t = good_topology();
  EXPECT_EQ(t.settings.liveness_timeout_s, 120u);
  ASSERT_EQ(t.dcs.size(), 2u);
  EXPECT_EQ(t.dcs[0].probes.size(), 2u);
  EXPECT_EQ(t.dcs[1].mode, DcMode::kSwitch);
  EXPECT_EQ(t.racks.size(), 4u);
  ASSERT_EQ(t.servers.size(), 4u);
  EXPECT_EQ(t.servers[1].hostname, "s2.dc1");
  EXPECT_EQ(t.rules, default_rules());
}

TEST(TopologyJsonTest, TopologyRoundTrip) {
  Topology t = good_topology();
  t.rules.push_back(full_rule());
  t.rules.back().src_dc = "dc1";
  t.rules.back().dst_dc = "dc2";
  Topology back = topology_from_json(to_json(t), kLimits, true);
  EXPECT_EQ(back.settings, t.settings);
  EXPECT_EQ(back.dcs, t.dcs);
  EXPECT_EQ(back.racks, t.racks);
  EXPECT_EQ(back.servers, t.servers);
  EXPECT_EQ(back.rules, t.rules);
}

TEST(TopologyJsonTest, ExplicitEmptyRulesStayEmpty) {
  json j = json::parse(R"({"dcs":[{"name":"d"}],"rules":[]})");
  EXPECT_TRUE(topology_from_json(j, kLimits).rules.empty());
}

TEST(TopologyJsonTest, ImportRejectsStateUnlessAllowed) {
  json j = to_json(good_topology());
  auto e = error_of([&] { topology_from_json(j, kLimits); });
  EXPECT_EQ(e.field(), "servers[0].last_seen_ms");
  EXPECT_THAT(e.message(), HasSubstr("read-only"));
}

TEST(TopologyJsonTest, ImportErrorPathsAreIndexed) {
  json j = parse_document(kTopologyYaml, "t.yaml");
  j["dcs"][1]["probes"] = json::parse(R"([{"protocol":"tcp"},{"protocol":"udp","port":"80"}])");
  EXPECT_EQ(error_of([&] { topology_from_json(j, kLimits); }).field(), "dcs[1].probes[1].port");

  j = parse_document(kTopologyYaml, "t.yaml");
  j["racks"][2]["cidrs"][1] = "fd00:2:1::1/64";
  EXPECT_EQ(error_of([&] { topology_from_json(j, kLimits); }).field(), "racks[2].cidrs[1]");

  j = parse_document(kTopologyYaml, "t.yaml");
  j["extra"] = 1;
  EXPECT_EQ(error_of([&] { topology_from_json(j, kLimits); }).field(), "extra");

  j = parse_document(kTopologyYaml, "t.yaml");
  j["servers"] = json::object();
  EXPECT_EQ(error_of([&] { topology_from_json(j, kLimits); }).field(), "servers");

  j = parse_document(kTopologyYaml, "t.yaml");
  j["settings"]["liveness_timeout_s"] = 1;
  EXPECT_EQ(error_of([&] { topology_from_json(j, kLimits); }).field(),
            "settings.liveness_timeout_s");
}

/// Applies `mutate` to a valid topology and expects validate_topology to name `field`.
template <typename F>
void expect_invalid(F mutate, const std::string& field, const std::string& message_part) {
  Topology t = good_topology();
  mutate(t);
  auto e = error_of([&] { validate_topology(t); });
  EXPECT_EQ(e.field(), field);
  EXPECT_THAT(e.message(), HasSubstr(message_part));
}

TEST(TopologyJsonTest, ValidateTopologyCrossChecks) {
  EXPECT_NO_THROW(validate_topology(good_topology()));
  expect_invalid([](Topology& t) { t.dcs[1].name = "dc1"; }, "dcs[1].name", "duplicate DC");
  expect_invalid([](Topology& t) { t.racks[1].name = "r1"; }, "racks[1].name", "duplicate rack");
  expect_invalid([](Topology& t) { t.racks[1].dc = "dc9"; }, "racks[1].dc", "unknown DC 'dc9'");
  expect_invalid([](Topology& t) { t.servers[2].name = "s1"; }, "servers[2].name",
                 "duplicate server");
  expect_invalid([](Topology& t) { t.servers[0].dc = "dc9"; }, "servers[0].dc", "unknown DC");
  expect_invalid([](Topology& t) { t.servers[0].rack = "r9"; }, "servers[0].rack",
                 "unknown rack 'r9'");
  expect_invalid([](Topology& t) { t.servers[0].rack = ""; }, "servers[0].rack", "rack mode");
  expect_invalid([](Topology& t) { t.servers[2].rack = "tor9"; }, "servers[2].rack",
                 "unknown switch");
  expect_invalid([](Topology& t) { t.servers[2].rack = "tor2"; }, "servers[2].rack",
                 "no address of server 's3'");
  expect_invalid([](Topology& t) { t.servers[3].addresses.push_back(ip("10.1.1.1")); },
                 "servers[3].addresses[1]", "already used by server 's1'");
  expect_invalid([](Topology& t) { t.racks[3].cidrs.clear(); }, "racks[3].cidrs",
                 "at least one CIDR");
  expect_invalid([](Topology& t) { t.racks[3].cidrs.push_back(cidr("10.2.0.0/16")); },
                 "racks[3].cidrs[1]", "overlaps 10.2.1.0/24 of switch 'tor1'");
  expect_invalid([](Topology& t) { t.racks[2].cidrs.push_back(cidr("10.2.2.128/25")); },
                 "racks[3].cidrs[0]", "overlaps 10.2.2.128/25 of switch 'tor1'");
  expect_invalid(
      [](Topology& t) {
        t.rules = default_rules();
        t.rules[2].name = t.rules[0].name;
      },
      "rules[2].name", "duplicate rule");
  expect_invalid(
      [](Topology& t) {
        t.rules = default_rules();
        t.rules[2].dst_dc = "dc7";
      },
      "rules[2].dst_dc", "unknown DC 'dc7'");
  expect_invalid(
      [](Topology& t) {
        t.rules = default_rules();
        t.rules[1].src_dc = "dc7";
      },
      "rules[1].src_dc", "unknown DC");
}

TEST(TopologyJsonTest, OverlapOnlyMattersWithinSwitchModeDc) {
  Topology t = good_topology();
  // Same prefixes in a rack-mode DC and in another DC are fine.
  t.racks[0].cidrs = {cidr("10.2.0.0/16")};
  t.racks[1].cidrs = {cidr("10.2.0.0/16")};
  EXPECT_NO_THROW(validate_topology(t));
}

TEST(TopologyJsonTest, LargeTopologyValidates) {
  Topology t;
  Datacenter dc;
  dc.name = "big";
  dc.mode = DcMode::kSwitch;
  t.dcs.push_back(dc);
  for (int r = 0; r < 2000; ++r) {
    Rack rack;
    rack.dc = "big";
    rack.name = "tor" + std::to_string(r);
    net::Cidr c = cidr("10.0.0.0/26");
    c.network.bytes[1] = static_cast<uint8_t>(r / 1024);
    c.network.bytes[2] = static_cast<uint8_t>((r / 4) % 256);
    c.network.bytes[3] = static_cast<uint8_t>((r % 4) * 64);
    rack.cidrs.push_back(c);
    t.racks.push_back(rack);
    for (int s = 0; s < 20; ++s) {
      Server server;
      server.name = rack.name + "-s" + std::to_string(s);
      server.dc = "big";
      server.rack = rack.name;
      net::IpAddress a = c.network;
      a.bytes[3] = static_cast<uint8_t>(c.network.bytes[3] + s + 1);
      server.addresses.push_back(a);
      t.servers.push_back(server);
    }
  }
  EXPECT_NO_THROW(validate_topology(t));
}

}  // namespace
}  // namespace pingmesh::model
