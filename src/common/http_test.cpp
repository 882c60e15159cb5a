#include <gtest/gtest.h>

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
