#include "controller/api.hpp"

#include <gtest/gtest.h>

#include <atomic>

#include "controller/fake_store_test_util.hpp"
#include "controller/openapi.hpp"

namespace pingmesh::controller {
namespace {

using nlohmann::json;

constexpr const char* kAdmin = "admin-secret";
constexpr const char* kAgent = "agent-secret";

/// The API over a fake store, driven through the router (no sockets).
class ApiTest : public ::testing::Test {
 protected:
  ApiTest() { build({kAdmin, kAgent}); }

  void build(AuthOptions auth) {
    handler = nullptr;
    api.reset();
    service.reset();
    pinglists = std::make_unique<pinglist::PinglistService>();
    TopologyServiceOptions o;
    o.background = false;
    o.now_ms = [this] { return now_ms.load(); };
    service = std::make_unique<TopologyService>(&store, pinglists.get(), o);
    ApiOptions options;
    options.auth = std::move(auth);
    api = std::make_unique<Api>(*service, *pinglists, registry, options);
    auto router = std::make_shared<http::Router>();
    api->add_routes(*router);
    add_process_routes(*router, registry, openapi_document());
    handler = make_handler(router, registry);
  }

  http::Response call(const std::string& method, const std::string& target,
                      const std::string& body = "", const std::string& token = kAdmin,
                      http::Headers headers = {}) {
    http::Request r;
    r.method = method;
    auto q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = body;
    r.remote_addr = remote;
    if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
    for (auto& h : headers) r.headers.push_back(h);
    if (!body.empty() && r.header("content-type").empty()) {
      r.headers.emplace_back("content-type", "application/json");
    }
    return handler(r);
  }

  static json body(const http::Response& r) {
    if (r.shared_body) return json::parse(*r.shared_body);
    return json::parse(r.body);
  }

  void seed() {
    ASSERT_EQ(call("POST", "/api/v1/dcs", R"({"name":"east","mode":"rack"})").status, 201);
    ASSERT_EQ(call("POST", "/api/v1/dcs/east/racks", R"({"name":"r1"})").status, 201);
    ASSERT_EQ(call("POST", "/api/v1/servers",
                   R"({"name":"e1","dc":"east","rack":"r1","addresses":["10.0.0.1"]})")
                  .status,
              201);
    ASSERT_EQ(call("POST", "/api/v1/servers",
                   R"({"name":"e2","dc":"east","rack":"r1","addresses":["10.0.0.2"]})")
                  .status,
              201);
  }

  testing::FakeStore store;
  metrics::Registry registry;
  std::unique_ptr<pinglist::PinglistService> pinglists;
  std::unique_ptr<TopologyService> service;
  std::unique_ptr<Api> api;
  http::Handler handler;
  std::atomic<int64_t> now_ms{1'700'000'000'000};
  std::string remote = "192.0.2.10";
};

TEST_F(ApiTest, CrudAnswersAndErrors) {
  seed();
  auto dcs = call("GET", "/api/v1/dcs", "", "");
  ASSERT_EQ(dcs.status, 200);
  EXPECT_EQ(body(dcs)["total"], 1);
  EXPECT_EQ(body(dcs)["items"][0]["name"], "east");

  auto dup = call("POST", "/api/v1/dcs", R"({"name":"east"})");
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(body(dup)["field"], "name");

  auto malformed = call("POST", "/api/v1/dcs", R"({"name":)");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(body(malformed)["field"], "body");

  auto unknown = call("POST", "/api/v1/dcs", R"({"name":"x","colour":"red"})");
  EXPECT_EQ(unknown.status, 422);
  EXPECT_EQ(body(unknown)["field"], "colour");

  auto wrong_type = call("PATCH", "/api/v1/dcs/east", R"({"interval_ms":"fast"})");
  EXPECT_EQ(wrong_type.status, 422);
  EXPECT_EQ(body(wrong_type)["field"], "interval_ms");

  auto probe = call("PATCH", "/api/v1/dcs/east", R"({"probes":[{"protocol":"tcp","port":70000}]})");
  EXPECT_EQ(probe.status, 422);
  EXPECT_EQ(body(probe)["field"], "probes[0].port");

  auto not_object = call("POST", "/api/v1/dcs", "[1]");
  EXPECT_EQ(not_object.status, 422);

  auto text = call("POST", "/api/v1/dcs", "name=x", kAdmin, {{"content-type", "text/plain"}});
  EXPECT_EQ(text.status, 415);

  EXPECT_EQ(call("GET", "/api/v1/dcs/mars", "", "").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/dcs/mars/racks", "", "").status, 404);
  EXPECT_EQ(call("PUT", "/api/v1/status", "{}").status, 405);
  EXPECT_EQ(call("GET", "/api/v1/nothing", "", "").status, 404);

  auto put = call("PUT", "/api/v1/dcs/east", R"({"mode":"rack","interval_ms":20000})");
  ASSERT_EQ(put.status, 200);
  EXPECT_EQ(body(put)["name"], "east");
  EXPECT_EQ(body(put)["interval_ms"], 20000);
  auto rename = call("PUT", "/api/v1/dcs/east", R"({"name":"west"})");
  EXPECT_EQ(rename.status, 422);
  EXPECT_EQ(body(rename)["field"], "name");

  auto servers = call("GET", "/api/v1/servers?dc=east&limit=1&offset=1", "", "");
  ASSERT_EQ(servers.status, 200);
  EXPECT_EQ(body(servers)["total"], 2);
  EXPECT_EQ(body(servers)["items"].size(), 1u);
  EXPECT_EQ(body(servers)["items"][0]["name"], "e2");
  EXPECT_EQ(body(servers)["items"][0]["alive"], false);
  auto bad_limit = call("GET", "/api/v1/servers?limit=abc", "", "");
  EXPECT_EQ(bad_limit.status, 400);
  EXPECT_EQ(body(bad_limit)["field"], "limit");
  EXPECT_EQ(call("GET", "/api/v1/servers?limit=100000", "", "").status, 422);

  auto dup_addr = call("POST", "/api/v1/servers",
                       R"({"name":"e3","dc":"east","rack":"r1","addresses":["10.0.0.1"]})");
  EXPECT_EQ(dup_addr.status, 422);
  EXPECT_EQ(body(dup_addr)["field"], "addresses[0]");

  auto bulk = call("POST", "/api/v1/servers",
                   R"([{"name":"b1","dc":"east","rack":"r1","addresses":["10.0.1.1"]},
                       {"name":"b2","dc":"east","rack":"r1","addresses":["not-an-ip"]}])");
  EXPECT_EQ(bulk.status, 422);
  EXPECT_EQ(body(bulk)["field"], "[1].addresses[0]");
  bulk = call("POST", "/api/v1/servers",
              R"([{"name":"b1","dc":"east","rack":"r1","addresses":["10.0.1.1"]}])");
  ASSERT_EQ(bulk.status, 200);
  EXPECT_EQ(body(bulk)["created"], 1);

  auto read_only = call("PATCH", "/api/v1/servers/e1", R"({"last_seen_ms":5})");
  EXPECT_EQ(read_only.status, 422);
  EXPECT_EQ(body(read_only)["field"], "last_seen_ms");

  EXPECT_EQ(call("DELETE", "/api/v1/servers/b1").status, 204);
  EXPECT_EQ(call("GET", "/api/v1/servers/b1", "", "").status, 404);

  auto rule = call("POST", "/api/v1/rules",
                   R"({"name":"east-off","level":"intra-dc","src_dc":"east","action":"disable"})");
  ASSERT_EQ(rule.status, 201);
  EXPECT_EQ(call("GET", "/api/v1/rules", "", "").status, 200);
  EXPECT_EQ(body(call("GET", "/api/v1/rules", "", ""))["total"], 4);
  auto settings = call("PATCH", "/api/v1/settings", R"({"liveness_timeout_s":1})");
  EXPECT_EQ(settings.status, 422);
  EXPECT_EQ(body(settings)["field"], "liveness_timeout_s");
}

TEST_F(ApiTest, TokensAndLoopback) {
  auto none = call("POST", "/api/v1/dcs", R"({"name":"a"})", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers.at(0).first, "www-authenticate");
  EXPECT_EQ(call("POST", "/api/v1/dcs", R"({"name":"a"})", "wrong").status, 401);
  EXPECT_EQ(call("POST", "/api/v1/dcs", R"({"name":"a"})", kAgent).status, 403);
  EXPECT_EQ(call("POST", "/api/v1/dcs", R"({"name":"a"})", kAdmin).status, 201);
  // Reads are public.
  EXPECT_EQ(call("GET", "/api/v1/dcs/a", "", "").status, 200);
  // Heartbeats need the agent or the admin token.
  EXPECT_EQ(call("POST", "/api/v1/heartbeat", R"({"name":"x"})", "").status, 401);
  EXPECT_EQ(call("POST", "/api/v1/heartbeat", R"({"name":"x"})", kAgent).status, 404);
  EXPECT_EQ(call("POST", "/api/v1/heartbeat", R"({"name":"x"})", kAdmin).status, 404);

  // Without an admin token only loopback clients may write.
  build({});
  EXPECT_EQ(call("POST", "/api/v1/dcs", R"({"name":"b"})", "").status, 403);
  remote = "127.0.0.1";
  EXPECT_EQ(call("POST", "/api/v1/dcs", R"({"name":"b"})", "").status, 201);
  remote = "::1";
  EXPECT_EQ(call("DELETE", "/api/v1/dcs/b", "", "").status, 204);
  EXPECT_EQ(call("POST", "/api/v1/heartbeat", R"({"name":"x"})", "").status, 404);

  auto metrics = call("GET", "/metrics", "", "");
  EXPECT_NE(metrics.body.find("pingmesh_api_rejected_requests_total{reason=\"unauthorized\"} 3"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("reason=\"forbidden\"} 2"), std::string::npos);
}

TEST_F(ApiTest, HeartbeatAndPinglistWithEtag) {
  seed();
  auto hb = call("POST", "/api/v1/heartbeat",
                 R"({"name":"e1","hostname":"e1.example","addresses":["10.0.0.1"],
                     "version":"0.1.0","capabilities":["tcp","udp"],"future":1})",
                 kAgent);
  ASSERT_EQ(hb.status, 200) << hb.body;
  EXPECT_EQ(body(hb)["server"], "e1");
  EXPECT_EQ(body(hb)["rack"], "r1");
  EXPECT_EQ(body(hb)["pinglist_url"], "/api/v1/pinglist/e1");
  EXPECT_EQ(body(hb)["heartbeat_interval_s"], 10);
  auto bad = call("POST", "/api/v1/heartbeat", R"({"name":"e1","addresses":["nope"]})", kAgent);
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(body(bad)["field"], "addresses[0]");
  call("POST", "/api/v1/heartbeat", R"({"name":"e2"})", kAgent);
  service->tick();

  auto xml = call("GET", "/api/v1/pinglist/e1", "", "");
  ASSERT_EQ(xml.status, 200);
  EXPECT_EQ(xml.content_type, "application/xml");
  ASSERT_TRUE(xml.shared_body);
  EXPECT_NE(xml.shared_body->find("e2"), std::string::npos);
  // ETag, Cache-Control and Vary come pre-rendered per pinglist version.
  ASSERT_TRUE(xml.head_lines);
  const std::string& lines = *xml.head_lines;
  auto at = lines.find("ETag: ");
  ASSERT_NE(at, std::string::npos);
  std::string etag = lines.substr(at + 6, lines.find('\r', at) - at - 6);
  ASSERT_FALSE(etag.empty());
  EXPECT_NE(lines.find("Cache-Control: no-cache\r\n"), std::string::npos);
  auto not_modified = call("GET", "/api/v1/pinglist/e1", "", "", {{"if-none-match", etag}});
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_FALSE(not_modified.shared_body);

  auto js = call("GET", "/api/v1/pinglist/e1", "", "", {{"accept", "application/json"}});
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "application/json");
  EXPECT_EQ(body(js)["server"], "e1");
  EXPECT_EQ(body(call("GET", "/api/v1/pinglist/e1?format=json", "", ""))["server"], "e1");
  EXPECT_EQ(call("GET", "/api/v1/pinglist/e1?format=yaml", "", "").status, 400);
  EXPECT_EQ(call("GET", "/api/v1/pinglist/ghost", "", "").status, 404);

  auto summary = body(call("GET", "/api/v1/pinglists", "", ""));
  EXPECT_EQ(summary["total"], 2);
  EXPECT_EQ(summary["stopped"], false);
  EXPECT_EQ(summary["items"][0]["alive"], true);

  // Kill switch: the pinglist changes (new ETag) and says stopped.
  auto stop = call("POST", "/api/v1/stop", "");
  ASSERT_EQ(stop.status, 200);
  EXPECT_EQ(body(stop)["stopped"], true);
  EXPECT_EQ(call("GET", "/api/v1/pinglist/e1", "", "", {{"if-none-match", etag}}).status, 200);
  EXPECT_EQ(body(call("GET", "/api/v1/pinglist/e1?format=json", "", ""))["stopped"], true);
  EXPECT_EQ(body(call("GET", "/api/v1/pinglists", "", ""))["stopped"], true);
  auto dc_stop = call("POST", "/api/v1/stop", R"({"dc":"mars"})");
  EXPECT_EQ(dc_stop.status, 404);
  EXPECT_EQ(call("POST", "/api/v1/stop", R"({"datacenter":"east"})").status, 422);
  ASSERT_EQ(call("POST", "/api/v1/resume", "").status, 200);
  ASSERT_EQ(call("POST", "/api/v1/stop", R"({"dc":"east"})").status, 200);
  auto status = body(call("GET", "/api/v1/status", "", ""));
  EXPECT_EQ(status["stopped"], false);
  EXPECT_EQ(status["stopped_dcs"], json::array({"east"}));
  EXPECT_EQ(status["servers"], 2);
  EXPECT_EQ(status["alive"], 2);
}

TEST_F(ApiTest, TopologyExportImportRoundTrip) {
  seed();
  auto exported = call("GET", "/api/v1/topology", "", "");
  ASSERT_EQ(exported.status, 200);
  auto doc = body(exported);
  EXPECT_FALSE(doc["servers"][0].contains("last_seen_ms"));
  EXPECT_TRUE(body(call("GET", "/api/v1/topology?state=true", "", ""))["servers"][0].contains(
      "last_seen_ms"));

  doc["dcs"][0]["description"] = "imported";
  auto dry = call("PUT", "/api/v1/topology?dry_run=true", doc.dump());
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(body(dry)["dry_run"], true);
  EXPECT_EQ(body(call("GET", "/api/v1/dcs/east", "", ""))["description"], "");
  ASSERT_EQ(call("PUT", "/api/v1/topology", doc.dump()).status, 200);
  EXPECT_EQ(body(call("GET", "/api/v1/dcs/east", "", ""))["description"], "imported");

  const std::string yaml =
      "dcs:\n  - name: north\n    mode: switch\nracks:\n  - dc: north\n    name: s1\n"
      "    cidrs: [10.5.0.0/24]\n";
  http::Request r;
  r.method = "PUT";
  r.path = "/api/v1/topology";
  r.body = yaml;
  r.remote_addr = remote;
  r.headers = {{"authorization", std::string("Bearer ") + kAdmin},
               {"content-type", "application/yaml"}};
  auto y = handler(r);
  ASSERT_EQ(y.status, 200) << y.body;
  EXPECT_EQ(body(call("GET", "/api/v1/dcs", "", ""))["items"][0]["name"], "north");

  auto broken = call("PUT", "/api/v1/topology", R"({"dcs":[{"name":"a","probes":[]}]})");
  EXPECT_EQ(broken.status, 422);
  EXPECT_EQ(body(broken)["field"], "dcs[0].probes");
}

TEST(Auth, ConstantTimeEqualAndHelpers) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret2"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("127.1.2.3"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_TRUE(is_loopback("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback("10.0.0.1"));
  EXPECT_FALSE(is_loopback("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_loopback(""));
  http::Request r;
  r.headers = {{"authorization", "bearer  tok "}};
  EXPECT_EQ(bearer_token(r), "tok");
  r.headers = {{"authorization", "Basic abc"}};
  EXPECT_EQ(bearer_token(r), "");
}

}  // namespace
}  // namespace pingmesh::controller
