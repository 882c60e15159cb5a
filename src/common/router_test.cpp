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

TEST(Request, QueryParams) {
  Request q;
  q.query = "a=1&name=r%C3%A9+x&flag";
  EXPECT_EQ(q.query_param("a"), "1");
  EXPECT_EQ(q.query_param("name"), "r\xc3\xa9 x");
  EXPECT_EQ(q.query_param("flag"), "");
  EXPECT_FALSE(q.query_param("missing"));
}
