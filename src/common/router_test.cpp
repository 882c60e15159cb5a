#include "common/router.hpp"

#include <gtest/gtest.h>

using namespace pingmesh::http;

TEST(Router, CapturesParamsAnd405) {
  Router r;
  r.add("GET", "/api/v1/dcs/{dc}", [](const Request& q) {
    return Response::text("dc=" + q.params.at(0));
  });
  r.add("DELETE", "/api/v1/dcs/{dc}", [](const Request&) { return Response::text("gone"); });
  Request q;
  q.method = "GET";
  q.path = "/api/v1/dcs/east";
  EXPECT_EQ(r.dispatch(q).body, "dc=east");
  q.method = "PUT";
  auto resp = r.dispatch(q);
  EXPECT_EQ(resp.status, 405);
  ASSERT_FALSE(resp.headers.empty());
  EXPECT_EQ(resp.headers[0].second, "GET, DELETE");
  q.path = "/api/v1/nothing";
  EXPECT_EQ(r.dispatch(q).status, 404);
}

TEST(Router, ConstRequestParamsReusedAndLongPaths) {
  Router r;
  r.add("GET", "/a/{x}/b/{y}", [](const Request& q) {
    return Response::text(q.params.at(0) + "," + q.params.at(1));
  });
  r.add("GET", "/one/{z}", [](const Request& q) {
    return Response::text(std::to_string(q.params.size()) + ":" + q.params.at(0));
  });
  Request q;
  q.method = "GET";
  q.path = "//a/1//b/2/";  // empty segments do not count
  const Request& cq = q;
  EXPECT_EQ(r.dispatch(cq).body, "1,2");
  q.path = "/one/z";  // the same Request again: earlier captures do not linger
  EXPECT_EQ(r.dispatch(cq).body, "1:z");
  q.method = "HEAD";  // answered by the GET route
  EXPECT_EQ(r.dispatch(cq).status, 200);
  q.method = "GET";
  q.path.clear();
  for (std::size_t i = 0; i < Router::kMaxSegments + 3; ++i) q.path += "/one";
  EXPECT_EQ(r.dispatch(cq).status, 404);
  q.path = "/a/1/b";
  EXPECT_EQ(r.dispatch(cq).status, 404);
  std::string too_long;
  for (std::size_t i = 0; i <= Router::kMaxSegments; ++i) too_long += "/s";
  EXPECT_THROW(r.add("GET", too_long, [](const Request&) { return Response{}; }),
               std::invalid_argument);
}

TEST(Request, QueryParams) {
  Request q;
  q.query = "a=1&name=r%C3%A9+x&flag";
  EXPECT_EQ(q.query_param("a"), "1");
  EXPECT_EQ(q.query_param("name"), "r\xc3\xa9 x");
  EXPECT_EQ(q.query_param("flag"), "");
  EXPECT_FALSE(q.query_param("missing"));
}
