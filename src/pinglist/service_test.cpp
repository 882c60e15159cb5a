#include "pinglist/service.hpp"

#include <gtest/gtest.h>

#include "model/pinglist.hpp"
#include "pinglist/test_topology.hpp"

namespace pingmesh::pinglist {
namespace {

TEST(PinglistService, EtagsConditionalGetsAnd404) {
  metrics::Registry registry;
  PinglistService svc(&registry);
  auto t = std::make_shared<const model::Topology>(testing::make_topology(1, 2, 3));
  EXPECT_EQ(svc.get("dc0-r0-s0", Format::kXml, "").status, 404);  // before the first plan
  svc.update(t, liveness_at(*t, 1000));
  auto xml = svc.get("dc0-r0-s0", Format::kXml, "");
  ASSERT_EQ(xml.status, 200);
  ASSERT_TRUE(xml.body);
  EXPECT_EQ(xml.entries, 3u);
  model::Pinglist parsed;
  std::string error;
  ASSERT_TRUE(model::parse_pinglist(*xml.body, &parsed, &error)) << error;
  EXPECT_EQ(parsed.entries.size(), 3u);
  EXPECT_EQ("\"" + parsed.version + "-x\"", xml.etag);

  auto json = svc.get("dc0-r0-s0", Format::kJson, "");
  EXPECT_NE(json.etag, xml.etag);  // one tag per representation
  EXPECT_EQ(json.body->front(), '{');

  EXPECT_EQ(svc.get("dc0-r0-s0", Format::kXml, xml.etag).status, 304);
  EXPECT_EQ(svc.get("dc0-r0-s0", Format::kXml, "\"nope\", " + std::string(xml.etag)).status, 304);
  EXPECT_EQ(svc.get("dc0-r0-s0", Format::kXml, "W/" + std::string(xml.etag)).status, 304);
  EXPECT_EQ(svc.get("dc0-r0-s0", Format::kXml, "*").status, 304);
  EXPECT_EQ(svc.get("dc0-r0-s0", Format::kXml, json.etag).status, 200);
  EXPECT_EQ(svc.get("nobody", Format::kXml, "").status, 404);
  // Served from the cache: the same buffer.
  EXPECT_EQ(svc.get("dc0-r0-s0", Format::kXml, "").body.get(), xml.body.get());
}

TEST(PinglistService, HeadLinesRenderedOncePerVersion) {
  PinglistService svc;
  auto t = std::make_shared<const model::Topology>(testing::make_topology(1, 2, 3));
  svc.update(t, liveness_at(*t, 1000));
  // A first pull that is a 304 renders the head lines but not the body.
  auto etag = std::string(svc.get("dc0-r0-s1", Format::kJson, "").etag);
  PinglistService fresh;
  fresh.update(t, liveness_at(*t, 1000));
  auto nm = fresh.get("dc0-r0-s1", Format::kJson, etag);
  ASSERT_EQ(nm.status, 304);
  EXPECT_FALSE(nm.body);
  ASSERT_TRUE(nm.head_lines);
  EXPECT_EQ(*nm.head_lines, "ETag: " + etag + "\r\nCache-Control: no-cache\r\nVary: Accept\r\n");
  // Later answers share the same rendered lines, whether 200 or 304.
  auto full = fresh.get("dc0-r0-s1", Format::kJson, "");
  ASSERT_EQ(full.status, 200);
  ASSERT_TRUE(full.body);
  EXPECT_EQ(full.head_lines.get(), nm.head_lines.get());
  EXPECT_EQ(full.etag, etag);
  EXPECT_EQ(fresh.get("dc0-r0-s1", Format::kJson, etag).head_lines.get(), nm.head_lines.get());
  // The other format has its own.
  auto xml = fresh.get("dc0-r0-s1", Format::kXml, etag);
  EXPECT_EQ(xml.status, 200);
  EXPECT_NE(xml.head_lines.get(), nm.head_lines.get());
  EXPECT_NE(xml.head_lines->find(std::string(xml.etag)), std::string::npos);
  // Unknown servers get no lines.
  EXPECT_FALSE(fresh.get("nobody", Format::kXml, "").head_lines);
}

TEST(PinglistService, RegeneratesOnLivenessAndKeepsUnchangedLists) {
  PinglistService svc;
  auto t = std::make_shared<const model::Topology>(testing::make_topology(2, 2, 2));
  auto alive = liveness_at(*t, 1000);
  svc.update(t, alive);
  auto other_dc_before = svc.get("dc1-r0-s1", Format::kXml, "");
  auto before = svc.get("dc0-r0-s0", Format::kXml, "");
  EXPECT_FALSE(svc.tick(alive));  // nothing changed
  const auto gen = svc.generation();
  // dc0-r0-s1 dies.
  for (std::size_t i = 0; i < t->servers.size(); ++i) {
    if (t->servers[i].name == "dc0-r0-s1") alive[i] = false;
  }
  EXPECT_TRUE(svc.tick(alive));
  EXPECT_EQ(svc.generation(), gen + 1);
  auto after = svc.get("dc0-r0-s0", Format::kXml, before.etag);
  EXPECT_EQ(after.status, 200);  // its rack peer is gone
  EXPECT_EQ(after.entries, before.entries - 1);
  EXPECT_FALSE(svc.summary("dc0-r0-s1").chosen);
  EXPECT_FALSE(svc.summary("dc0-r0-s1").alive);
  auto other = svc.get("dc1-r0-s1", Format::kXml, "");
  if (other.etag == other_dc_before.etag) {
    EXPECT_EQ(other.body.get(), other_dc_before.body.get());  // carried over, not re-rendered
  }
}

TEST(PinglistService, KillSwitchIsVisible) {
  PinglistService svc;
  auto topo = testing::make_topology(1, 1, 2);
  topo.settings.stopped = true;
  auto t = std::make_shared<const model::Topology>(topo);
  svc.update(t, liveness_at(*t, 1000));
  auto s = svc.get("dc0-r0-s0", Format::kJson, "");
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_NE(s.body->find("\"stopped\":true"), std::string::npos);
  EXPECT_TRUE(svc.summary("dc0-r0-s0").stopped);
}

}  // namespace
}  // namespace pingmesh::pinglist
