// The real `pingmesh server` on an ephemeral loopback port, driven with raw HTTP and with
// `pingmesh ctl`.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/http.hpp"
#include "process.hpp"

namespace pingmesh::testing {
namespace {

using nlohmann::json;

constexpr const char* kAdmin = "it-admin-token";
constexpr const char* kAgent = "it-agent-token";

class ControllerIntegration : public ::testing::Test {
 protected:
  /// Starts a server on dir/pingmesh.db with both tokens and a 1 s interval floor.
  std::unique_ptr<ServerProcess> start_server(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--db",
                                  (dir.path() / "pingmesh.db").string(),
                                  "--admin-token",
                                  kAdmin,
                                  "--agent-token",
                                  kAgent,
                                  "--min-interval-ms",
                                  "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = std::make_unique<ServerProcess>(dir.path(), args);
    EXPECT_TRUE(s->start()) << s->log();
    return s;
  }

  http::ClientResponse call(const std::string& method, const std::string& path,
                            const std::string& body = "", const std::string& token = kAdmin,
                            http::Headers headers = {}) {
    http::ClientRequest r;
    r.method = method;
    r.url = server->url() + path;
    r.body = body;
    r.headers = std::move(headers);
    if (!token.empty()) r.headers.emplace_back("Authorization", std::string("Bearer ") + token);
    bool has_type = std::any_of(r.headers.begin(), r.headers.end(),
                                [](const auto& h) { return h.first == "Content-Type"; });
    if (!body.empty() && !has_type) r.headers.emplace_back("Content-Type", "application/json");
    return client.perform(r);
  }

  RunResult ctl(std::vector<std::string> args, bool with_token = true) {
    std::vector<std::string> full{"ctl", "--server", server->url()};
    if (with_token) {
      full.push_back("--token");
      full.push_back(kAdmin);
    }
    full.insert(full.end(), args.begin(), args.end());
    return run_pingmesh(full, dir.path());
  }

  static json parse(const std::string& s) { return json::parse(s); }

  /// Polls the pinglist of `server` until `pred(body)` holds (pinglists follow liveness within
  /// the controller's 1 s check).
  template <class Pred>
  std::string wait_pinglist(const std::string& name, Pred pred) {
    std::string last;
    for (int i = 0; i < 60; ++i) {
      auto r = call("GET", "/api/v1/pinglist/" + name + "?format=json", "", "");
      last = r.body;
      if (r.status == 200 && pred(parse(r.body))) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "pinglist of " << name << " never matched; last: " << last;
    return last;
  }

  /// A rack-mode DC east (rack r1, servers e1 and e2) and a switch-mode DC west (switch s1
  /// over 10.1.0.0/24 and fd00:1::/64), created with ctl.
  void seed() {
    for (auto args : std::vector<std::vector<std::string>>{
             {"dc", "add", "east", "--mode", "rack", "--interval-ms", "1000"},
             {"dc", "add", "west", "--mode", "switch", "--probe", "tcp:9001", "--probe",
              "udp:9001:46", "--interval-ms", "1000"},
             {"rack", "add", "east", "r1"},
             {"rack", "add", "west", "s1", "--cidr", "10.1.0.0/24", "--cidr", "fd00:1::/64"},
             {"server", "add", "e1", "--dc", "east", "--rack", "r1", "--address", "10.0.0.1"},
             {"server", "add", "e2", "--dc", "east", "--rack", "r1", "--address", "10.0.0.2"}}) {
      auto r = ctl(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }

  void heartbeat(const std::string& name, const std::string& address, int expect = 200,
                 const std::string& dc = "") {
    json hb{{"name", name}, {"hostname", name}, {"addresses", {address}}, {"version", "it"}};
    if (!dc.empty()) hb["dc"] = dc;
    auto r = call("POST", "/api/v1/heartbeat", hb.dump(), kAgent);
    EXPECT_EQ(r.status, expect) << r.body;
  }

  TempDir dir;
  http::Client client;
  std::unique_ptr<ServerProcess> server;
};

TEST_F(ControllerIntegration, CrudThroughCtlAndErrorsThroughHttp) {
  server = start_server({"--max-body-bytes", "4096"});
  seed();
  auto list = ctl({"-o", "json", "dc", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto dcs = parse(list.out);
  ASSERT_EQ(dcs.size(), 2u);
  EXPECT_EQ(dcs[1]["name"], "west");
  EXPECT_EQ(dcs[1]["probes"][1]["dscp"], 46);
  auto table = ctl({"server", "list", "--dc", "east"});
  EXPECT_NE(table.out.find("NAME"), std::string::npos);
  EXPECT_NE(table.out.find("10.0.0.2"), std::string::npos);
  EXPECT_EQ(ctl({"ratio", "set", "east", "--racks", "0.5", "--servers", "0.5"}).exit_code, 0);
  EXPECT_EQ(parse(call("GET", "/api/v1/dcs/east").body)["server_ratio"], 0.5);
  EXPECT_EQ(ctl({"rule", "add", "no-inter", "--level", "inter-dc", "--src-dc", "east", "--dst-dc",
                 "west", "--action", "disable"})
                .exit_code,
            0);
  EXPECT_EQ(parse(call("GET", "/api/v1/rules").body)["total"], 4);

  // ctl shows the API's error with its field and fails.
  auto bad = ctl({"dc", "set", "east", "--rack-ratio", "2"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("422: rack_ratio:"), std::string::npos) << bad.err;
  auto no_token = ctl({"dc", "rm", "east"}, /*with_token=*/false);
  EXPECT_NE(no_token.exit_code, 0);
  EXPECT_NE(no_token.err.find("401"), std::string::npos) << no_token.err;

  auto check = [&](const http::ClientResponse& r, int status, const std::string& field) {
    EXPECT_EQ(r.status, status) << r.body;
    if (!field.empty()) {
      EXPECT_EQ(parse(r.body).value("field", ""), field) << r.body;
    }
  };
  check(call("POST", "/api/v1/dcs", R"({"name": "x",)"), 400, "body");
  check(call("POST", "/api/v1/dcs", R"({"name":"x","colour":"red"})"), 422, "colour");
  check(call("POST", "/api/v1/dcs", R"({"name":"x","interval_ms":"soon"})"), 422, "interval_ms");
  check(call("POST", "/api/v1/dcs", R"({"name":"x","probes":[{"protocol":"smoke"}]})"), 422,
        "probes[0].protocol");
  check(call("POST", "/api/v1/dcs", R"({"name":"x","interval_ms":10})"), 422, "interval_ms");
  check(call("POST", "/api/v1/dcs", R"({"name":"east"})"), 409, "name");
  check(call("POST", "/api/v1/dcs", "name=x", kAdmin, {{"Content-Type", "text/plain"}}), 415,
        "content-type");
  check(call("POST", "/api/v1/dcs", R"({"name":"x"})", ""), 401, "authorization");
  check(call("POST", "/api/v1/dcs", R"({"name":"x"})", "not-the-token"), 401, "authorization");
  check(call("POST", "/api/v1/dcs", R"({"name":"x"})", kAgent), 403, "authorization");
  check(call("POST", "/api/v1/heartbeat", R"({"name":"e1"})", ""), 401, "authorization");
  check(call("GET", "/api/v1/dcs/mars"), 404, "dc");
  check(call("GET", "/api/v1/servers/ghost"), 404, "server");
  check(call("DELETE", "/api/v1/rules/ghost"), 404, "rule");
  check(call("POST", "/api/v1/servers",
             R"({"name":"e3","dc":"east","rack":"r1","addresses":["10.0.0.1"]})"),
        422, "addresses[0]");
  check(call("GET", "/api/v1/servers?limit=x"), 400, "limit");
  auto not_allowed = call("DELETE", "/api/v1/status");
  EXPECT_EQ(not_allowed.status, 405);
  EXPECT_EQ(not_allowed.header("allow"), "GET");
  auto big = call("POST", "/api/v1/dcs", std::string(10000, ' '));
  EXPECT_EQ(big.status, 413);
  // Nothing above changed the topology.
  EXPECT_EQ(parse(call("GET", "/api/v1/dcs").body)["total"], 2);
  auto metrics = call("GET", "/metrics", "", "");
  EXPECT_NE(metrics.body.find("pingmesh_api_rejected_requests_total{reason=\"unauthorized\"} 4"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("pingmesh_http_bad_requests 1"), std::string::npos);

  EXPECT_EQ(call("GET", "/healthz", "", "").status, 200);
  auto doc = call("GET", "/api/v1/openapi.json", "", "");
  ASSERT_EQ(doc.status, 200);
  EXPECT_TRUE(parse(doc.body)["paths"].contains("/api/v1/pinglist/{server}"));
  EXPECT_EQ(server->stop(), 0);
}

TEST_F(ControllerIntegration, FabricDevicesThroughCtl) {
  server = start_server();
  seed();
  // A list, as `lab/lab.sh devices DC` prints it.
  auto file = dir.write("devices.json",
                        R"([{"name":"d1s1","layer":"spine","addresses":["10.1.0.1","fd00:1::1"]},
                            {"name":"d1r1t","layer":"tor","addresses":["10.1.1.254"]}])");
  auto set = ctl({"dc", "devices", "east", "--set", file});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_NE(set.out.find("2 fabric devices set on east"), std::string::npos) << set.out;
  json devices = parse(call("GET", "/api/v1/dcs/east").body)["devices"];
  ASSERT_EQ(devices.size(), 2u) << devices;
  EXPECT_EQ(devices[0]["name"], "d1s1");
  EXPECT_EQ(devices[0]["addresses"][1], "fd00:1::1");
  EXPECT_EQ(devices[1]["layer"], "tor");
  auto table = ctl({"dc", "devices", "east"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("d1r1t"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("10.1.1.254"), std::string::npos) << table.out;
  auto as_json = ctl({"-o", "json", "dc", "devices", "east"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(parse(as_json.out), devices);

  // YAML with a "devices" key; an address used twice is refused, naming the field, and the DC
  // keeps its devices.
  auto dup = dir.write("dup.yaml",
                       "devices:\n"
                       "  - {name: s1, layer: spine, addresses: [10.1.0.1]}\n"
                       "  - {name: s2, layer: spine, addresses: [10.1.0.1]}\n");
  auto bad = ctl({"dc", "devices", "east", "--set", dup});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("422: devices[1].addresses[0]"), std::string::npos) << bad.err;
  EXPECT_EQ(parse(call("GET", "/api/v1/dcs/east").body)["devices"], devices);
  auto not_list = dir.write("one.json", R"({"name":"s1","layer":"spine"})");
  bad = ctl({"dc", "devices", "east", "--set", not_list});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("must hold a list of devices"), std::string::npos) << bad.err;
  auto broken = dir.write("broken.yaml", "devices: [\n");
  bad = ctl({"dc", "devices", "east", "--set", broken});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("broken.yaml line"), std::string::npos) << bad.err;

  // An empty list removes them.
  auto empty = dir.write("empty.yaml", "[]\n");
  auto cleared = ctl({"dc", "devices", "east", "--set", empty});
  ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
  EXPECT_TRUE(parse(call("GET", "/api/v1/dcs/east").body).value("devices", json::array()).empty());
}

TEST_F(ControllerIntegration, HeartbeatsPinglistsAndEtags) {
  server = start_server();
  seed();
  heartbeat("e1", "10.0.0.1");
  heartbeat("e2", "10.0.0.2");
  heartbeat("ghost", "10.0.0.99", 404, "east");  // rack mode: not registered
  heartbeat("w1", "10.1.0.5");                   // switch mode: created under s1
  heartbeat("w2", "fd00:1::7");                  // by its IPv6 address
  heartbeat("lost", "192.0.2.1", 422);           // no switch CIDR holds it
  auto w2 = parse(call("GET", "/api/v1/servers/w2").body);
  EXPECT_EQ(w2["dc"], "west");
  EXPECT_EQ(w2["rack"], "s1");
  EXPECT_EQ(w2["alive"], true);
  EXPECT_EQ(w2["agent_version"], "it");

  wait_pinglist("e1", [](const json& p) {
    for (const auto& e : p.at("peers")) {
      if (e.at("name") == "e2") return true;
    }
    return false;
  });
  auto xml = call("GET", "/api/v1/pinglist/e1", "", "");
  ASSERT_EQ(xml.status, 200);
  EXPECT_EQ(xml.header("content-type"), "application/xml");
  EXPECT_NE(xml.body.find("<Pinglist"), std::string::npos);
  EXPECT_NE(xml.body.find("10.0.0.2"), std::string::npos);
  std::string etag(xml.header("etag"));
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(call("GET", "/api/v1/pinglist/e1", "", "", {{"If-None-Match", etag}}).status, 304);
  auto js = call("GET", "/api/v1/pinglist/e1", "", "", {{"Accept", "application/json"}});
  EXPECT_EQ(js.header("content-type"), "application/json");
  EXPECT_EQ(parse(js.body)["server"], "e1");
  EXPECT_NE(js.header("etag"), etag);  // each format has its own tag
  EXPECT_EQ(call("GET", "/api/v1/pinglist/ghost", "", "").status, 404);

  auto via_ctl = ctl({"pinglist", "w1", "--json"});
  ASSERT_EQ(via_ctl.exit_code, 0) << via_ctl.err;
  EXPECT_EQ(parse(via_ctl.out)["dc"], "west");

  // Removing a server removes its pinglist.
  ASSERT_EQ(ctl({"server", "rm", "w1"}).exit_code, 0);
  EXPECT_EQ(call("GET", "/api/v1/pinglist/w1", "", "").status, 404);
  auto summary = parse(call("GET", "/api/v1/pinglists", "", "").body);
  EXPECT_EQ(summary["total"], 3);
  EXPECT_EQ(summary["stopped"], false);
  // The agent moved: a heartbeat from another address re-places it.
  heartbeat("w2", "10.1.0.8");
  EXPECT_EQ(parse(call("GET", "/api/v1/servers/w2").body)["addresses"], json::array({"10.1.0.8"}));
}

TEST_F(ControllerIntegration, KillSwitchAndRestartKeepEverything) {
  server = start_server();
  seed();
  heartbeat("e1", "10.0.0.1");
  heartbeat("e2", "10.0.0.2");
  heartbeat("w1", "10.1.0.5");
  wait_pinglist("e1", [](const json& p) { return !p.at("peers").empty(); });

  auto stop = ctl({"stop"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  auto stopped = parse(call("GET", "/api/v1/pinglist/e1?format=json", "", "").body);
  EXPECT_EQ(stopped["stopped"], true);
  EXPECT_TRUE(stopped["peers"].empty());
  EXPECT_NE(call("GET", "/api/v1/pinglist/w1", "", "").body.find("stopped=\"true\""),
            std::string::npos);
  ASSERT_EQ(ctl({"resume"}).exit_code, 0);
  ASSERT_EQ(ctl({"stop", "--dc", "west"}).exit_code, 0);
  EXPECT_EQ(parse(call("GET", "/api/v1/pinglist/w1?format=json", "", "").body)["stopped"], true);
  EXPECT_EQ(parse(call("GET", "/api/v1/pinglist/e1?format=json", "", "").body)["stopped"], false);
  auto status = ctl({"-o", "json", "status"});
  ASSERT_EQ(status.exit_code, 0);
  EXPECT_EQ(parse(status.out)["stopped_dcs"], json::array({"west"}));
  EXPECT_EQ(parse(status.out)["alive"], 3);
  ASSERT_EQ(ctl({"stop"}).exit_code, 0);
  auto exported = call("GET", "/api/v1/topology", "", "");
  ASSERT_EQ(exported.status, 200);

  // Restart on the same database: topology, kill switch and heartbeats (flushed at shutdown)
  // are all still there.
  EXPECT_EQ(server->stop(), 0);
  EXPECT_NE(server->log().find("server: stopped"), std::string::npos);
  server = start_server();
  EXPECT_NE(server->log().find("2 DCs, 3 servers (probing STOPPED)"), std::string::npos)
      << server->log();
  auto after = parse(call("GET", "/api/v1/status", "", "").body);
  EXPECT_EQ(after["stopped"], true);
  EXPECT_EQ(after["stopped_dcs"], json::array({"west"}));
  EXPECT_EQ(after["servers"], 3);
  EXPECT_EQ(after["alive"], 3);
  EXPECT_EQ(parse(call("GET", "/api/v1/servers/w1").body)["rack"], "s1");
  EXPECT_EQ(parse(call("GET", "/api/v1/pinglist/e1?format=json", "", "").body)["stopped"], true);
  EXPECT_EQ(call("GET", "/api/v1/topology", "", "").body, exported.body);
  ASSERT_EQ(ctl({"resume"}).exit_code, 0);
  wait_pinglist("e1", [](const json& p) { return p["stopped"] == false; });
}

TEST_F(ControllerIntegration, ImportExportAndConfigFile) {
  const std::string topology_yaml = R"(settings:
  liveness_timeout_s: 60
dcs:
  - name: sw
    mode: switch
    interval_ms: 1000
    probes: [{protocol: tcp, port: 9001}, {protocol: icmp}]
  - name: rk
    mode: rack
racks:
  - {dc: sw, name: tor1, cidrs: [10.8.0.0/24, "fd00:8::/64"]}
  - {dc: rk, name: rack1}
servers:
  - {name: rk-1, dc: rk, rack: rack1, addresses: [10.9.0.1]}
)";
  auto topo = dir.write("topology.yaml", topology_yaml);
  auto config = dir.write("server.yaml", "log-level: info\nheartbeat-interval-s: 5\n");
  server = start_server({"--import", topo, "--config", config});
  EXPECT_NE(server->log().find("2 DCs, 1 servers"), std::string::npos) << server->log();
  EXPECT_EQ(parse(call("GET", "/api/v1/settings", "", "").body)["liveness_timeout_s"], 60);
  auto hb =
      call("POST", "/api/v1/heartbeat", R"({"name":"sw-1","addresses":["10.8.0.3"]})", kAgent);
  ASSERT_EQ(hb.status, 200) << hb.body;
  EXPECT_EQ(parse(hb.body)["heartbeat_interval_s"], 5);
  EXPECT_EQ(parse(hb.body)["rack"], "tor1");

  auto exported = ctl({"export"});
  ASSERT_EQ(exported.exit_code, 0);
  auto file = dir.write("exported.json", exported.out);
  auto dry = ctl({"import", file, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("valid: 2 DCs"), std::string::npos) << dry.out;
  auto broken = dir.write("broken.yaml", "dcs:\n  - name: a\n    mode: sideways\n");
  auto r = ctl({"import", broken});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("dcs[0].mode"), std::string::npos) << r.err;
  EXPECT_EQ(parse(call("GET", "/api/v1/dcs", "", "").body)["total"], 2);
  auto yaml_put = call("PUT", "/api/v1/topology", topology_yaml, kAdmin,
                       {{"Content-Type", "application/yaml"}});
  EXPECT_EQ(yaml_put.status, 200) << yaml_put.body;
  EXPECT_EQ(server->stop(), 0);

  // A bad config file names the file and the line; the server does not start.
  auto bad = dir.write("bad.yaml", "db: x.db\nlisten-port: 9000\n");
  auto res = run_pingmesh({"server", "--config", bad}, dir.path());
  EXPECT_NE(res.exit_code, 0);
  EXPECT_NE(res.err.find(bad + ":2: unknown key 'listen-port'"), std::string::npos) << res.err;
}

TEST_F(ControllerIntegration, NoAdminTokenMeansLoopbackOnlyAndTokensFromEnvironment) {
  server = std::make_unique<ServerProcess>(
      dir.path(), std::vector<std::string>{"--db", (dir.path() / "env.db").string()},
      std::map<std::string, std::string>{{"PINGMESH_AGENT_TOKEN", "from-env"}});
  ASSERT_TRUE(server->start()) << server->log();
  EXPECT_NE(server->log().find("no admin token configured"), std::string::npos);
  // Loopback client, no token: allowed.
  EXPECT_EQ(call("POST", "/api/v1/dcs", R"({"name":"a"})", "").status, 201);
  // The agent token came from the environment.
  EXPECT_EQ(call("POST", "/api/v1/heartbeat", R"({"name":"x"})", "").status, 401);
  EXPECT_EQ(call("POST", "/api/v1/heartbeat", R"({"name":"x"})", "from-env").status, 404);
}

}  // namespace
}  // namespace pingmesh::testing
