#include <gtest/gtest.h>

#include <thread>

#include "common/http.hpp"

using namespace pingmesh::http;

TEST(HttpServer, ServesKeepAliveAndLimitsBody) {
  ServerOptions opt;
  opt.port = 0;
  opt.threads = 2;
  opt.max_body_bytes = 1000;
  Server srv(opt, [](const Request& q) {
    auto r = Response::text(q.method + " " + q.path + " " + std::string(q.header("x-test")) +
                            " " + std::to_string(q.body.size()));
    r.headers.emplace_back("etag", "\"abc\"");
    return r;
  });
  srv.start();
  ASSERT_NE(srv.port(), 0);
  Client c;
  std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  for (int i = 0; i < 3; ++i) {
    auto resp = c.perform({"GET", base + "/a%20b?x=1", {{"X-Test", "yes"}}, "", {}});
    ASSERT_EQ(resp.status, 200) << resp.error;
    EXPECT_EQ(resp.body, "GET /a b yes 0");
    EXPECT_EQ(resp.header("etag"), "\"abc\"");
  }
  auto post = c.perform({"POST", base + "/p", {}, std::string(500, 'x'), {}});
  EXPECT_EQ(post.body, "POST /p  500");
  auto big = c.perform({"POST", base + "/p", {}, std::string(5000, 'x'), {}});
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("too large"), std::string::npos);
  EXPECT_GE(srv.stats().requests, 4u);
  srv.stop();
  auto after = c.perform({"GET", base + "/", {}, "", std::chrono::milliseconds(500)});
  EXPECT_EQ(after.status, 0);
}

TEST(HttpServer, ClosesIdleConnections) {
  ServerOptions opt;
  opt.port = 0;
  opt.idle_timeout = std::chrono::seconds(1);
  Server srv(opt, [](const Request&) { return Response::text("ok"); });
  srv.start();
  Client c;
  std::string url = "http://127.0.0.1:" + std::to_string(srv.port()) + "/";
  ASSERT_EQ(c.perform({"GET", url, {}, "", {}}).status, 200);
  EXPECT_EQ(srv.stats().open_connections, 1u);
  // The kept-alive connection is closed by the sweep once idle for longer than the timeout.
  for (int i = 0; i < 40 && srv.stats().open_connections > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(srv.stats().open_connections, 0u);
  EXPECT_EQ(c.perform({"GET", url, {}, "", {}}).status, 200);  // the client reconnects
}
