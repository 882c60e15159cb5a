#include "model/pinglist.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace pingmesh::model {
namespace {

using ::testing::HasSubstr;

PinglistEntry entry(std::string target, std::string_view addr, Protocol proto, uint16_t port,
                    Level level, std::string dc, std::string rack) {
  PinglistEntry e;
  e.target = std::move(target);
  e.address = *net::IpAddress::parse(addr);
  e.protocol = proto;
  e.port = port;
  e.level = level;
  e.dst_dc = std::move(dc);
  e.dst_rack = std::move(rack);
  return e;
}

Pinglist sample() {
  Pinglist p;
  p.server = "s1";
  p.dc = "dc1";
  p.rack = "r1";
  p.version = "00000000000000ab";
  p.entries.push_back(
      entry("s2", "10.0.0.2", Protocol::kTcp, 9001, Level::kIntraRack, "dc1", "r1"));
  auto icmp = entry("s3", "fd00::3", Protocol::kIcmp, 0, Level::kIntraDc, "dc1", "r2");
  icmp.interval_ms = 20000;
  icmp.payload_bytes = 1200;
  icmp.dscp = 46;
  p.entries.push_back(icmp);
  p.entries.push_back(entry("s9", "10.9.0.9", Protocol::kHttp, 9002, Level::kInterDc, "dc2", ""));
  return p;
}

const char* kSampleXml =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Pinglist format=\"1\" server=\"s1\" dc=\"dc1\" rack=\"r1\" version=\"00000000000000ab\" "
    "stopped=\"false\">\n"
    "  <Peer name=\"s2\" addr=\"10.0.0.2\" proto=\"tcp\" port=\"9001\" interval_ms=\"10000\" "
    "payload=\"0\" dscp=\"0\" level=\"intra-rack\" dc=\"dc1\" rack=\"r1\"/>\n"
    "  <Peer name=\"s3\" addr=\"fd00::3\" proto=\"icmp\" port=\"0\" interval_ms=\"20000\" "
    "payload=\"1200\" dscp=\"46\" level=\"intra-dc\" dc=\"dc1\" rack=\"r2\"/>\n"
    "  <Peer name=\"s9\" addr=\"10.9.0.9\" proto=\"http\" port=\"9002\" interval_ms=\"10000\" "
    "payload=\"0\" dscp=\"0\" level=\"inter-dc\" dc=\"dc2\" rack=\"\"/>\n"
    "</Pinglist>\n";

const char* kSampleJson =
    R"({"format":1,"server":"s1","dc":"dc1","rack":"r1","version":"00000000000000ab",)"
    R"("stopped":false,"peers":[)"
    R"({"name":"s2","addr":"10.0.0.2","proto":"tcp","port":9001,"interval_ms":10000,)"
    R"("payload":0,"dscp":0,"level":"intra-rack","dc":"dc1","rack":"r1"},)"
    R"({"name":"s3","addr":"fd00::3","proto":"icmp","port":0,"interval_ms":20000,)"
    R"("payload":1200,"dscp":46,"level":"intra-dc","dc":"dc1","rack":"r2"},)"
    R"({"name":"s9","addr":"10.9.0.9","proto":"http","port":9002,"interval_ms":10000,)"
    R"("payload":0,"dscp":0,"level":"inter-dc","dc":"dc2","rack":""}]})";

Pinglist parse_ok(std::string_view text) {
  Pinglist p;
  std::string error;
  EXPECT_TRUE(parse_pinglist(text, &p, &error)) << error;
  return p;
}

std::string parse_error(std::string_view text) {
  Pinglist p;
  std::string error;
  EXPECT_FALSE(parse_pinglist(text, &p, &error)) << text;
  EXPECT_FALSE(error.empty());
  return error;
}

/// The sample XML with the first occurrence of `from` replaced by `to`.
std::string xml_with(std::string_view from, std::string_view to) {
  std::string s = kSampleXml;
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

std::string json_with(std::string_view from, std::string_view to) {
  std::string s = kSampleJson;
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(PinglistTest, XmlRendersByteIdentical) {
  EXPECT_EQ(to_xml(sample()), kSampleXml);
  Pinglist copy = sample();
  EXPECT_EQ(to_xml(copy), to_xml(sample()));
}

TEST(PinglistTest, JsonRendersByteIdentical) {
  EXPECT_EQ(to_json(sample()), kSampleJson);
  EXPECT_EQ(to_json(sample()), to_json(Pinglist(sample())));
}

TEST(PinglistTest, XmlRoundTrip) {
  EXPECT_EQ(parse_ok(to_xml(sample())), sample());
  EXPECT_EQ(to_xml(parse_ok(kSampleXml)), kSampleXml);
}

TEST(PinglistTest, JsonRoundTrip) {
  EXPECT_EQ(parse_ok(to_json(sample())), sample());
  EXPECT_EQ(to_json(parse_ok(kSampleJson)), kSampleJson);
}

TEST(PinglistTest, StoppedAndEmptyRoundTrip) {
  Pinglist p;
  p.server = "s1";
  p.dc = "dc1";
  p.version = "0123456789abcdef";
  p.stopped = true;
  EXPECT_THAT(to_xml(p), HasSubstr("stopped=\"true\""));
  EXPECT_EQ(parse_ok(to_xml(p)), p);
  EXPECT_EQ(parse_ok(to_json(p)), p);
}

TEST(PinglistTest, XmlEscapesSpecialCharacters) {
  Pinglist p = sample();
  p.dc = "a&b<c>\"d\"";
  std::string xml = to_xml(p);
  EXPECT_THAT(xml, HasSubstr("dc=\"a&amp;b&lt;c&gt;&quot;d&quot;\""));
  EXPECT_EQ(parse_ok(xml), p);
}

TEST(PinglistTest, LeadingWhitespaceIsAccepted) {
  EXPECT_EQ(parse_ok(std::string("\n  \t") + kSampleXml), sample());
  EXPECT_EQ(parse_ok(std::string("\r\n ") + kSampleJson), sample());
}

TEST(PinglistTest, MalformedXmlNamesTheAttribute) {
  struct Case {
    std::string text;
    const char* expected;
  };
  const Case cases[] = {
      {xml_with("addr=\"10.0.0.2\"", "addr=\"10.0.0.300\""), "'addr'"},
      {xml_with(" addr=\"10.0.0.2\"", ""), "'addr'"},
      {xml_with("port=\"9001\"", "port=\"http\""), "'port'"},
      {xml_with("port=\"9001\"", "port=\"70000\""), "'port'"},
      {xml_with("port=\"9001\"", "port=\"0\""), "'port'"},
      {xml_with("proto=\"tcp\"", "proto=\"sctp\""), "'proto'"},
      {xml_with("interval_ms=\"10000\"", "interval_ms=\"0\""), "'interval_ms'"},
      {xml_with("interval_ms=\"10000\"", "interval_ms=\"-5\""), "'interval_ms'"},
      {xml_with("payload=\"0\"", "payload=\"65537\""), "'payload'"},
      {xml_with("dscp=\"0\"", "dscp=\"64\""), "'dscp'"},
      {xml_with("level=\"intra-rack\"", "level=\"rack\""), "'level'"},
      {xml_with("name=\"s2\"", "name=\"bad name\""), "'name'"},
      {xml_with(" dc=\"dc1\" rack=\"r1\"/>", " rack=\"r1\"/>"), "'dc'"},
      {xml_with("stopped=\"false\"", "stopped=\"maybe\""), "'stopped'"},
      {xml_with(" server=\"s1\"", ""), "'server'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(parse_error(c.text), HasSubstr(c.expected));
  }
  // The failing peer is identified too.
  EXPECT_THAT(parse_error(xml_with("addr=\"fd00::3\"", "addr=\"fd00::zz\"")),
              HasSubstr("<Peer> #1"));
}

TEST(PinglistTest, MalformedJsonNamesTheField) {
  struct Case {
    std::string text;
    const char* expected;
  };
  const Case cases[] = {
      {json_with(R"("addr":"10.0.0.2")", R"("addr":"nope")"), "'addr'"},
      {json_with(R"("port":9001)", R"("port":-1)"), "'port'"},
      {json_with(R"("port":9001)", R"("port":true)"), "'port'"},
      {json_with(R"("proto":"tcp")", R"("proto":"TCP")"), "'proto'"},
      {json_with(R"("dscp":46)", R"("dscp":99)"), "'dscp'"},
      {json_with(R"("level":"inter-dc")", R"("level":"x")"), "'level'"},
      {json_with(R"("stopped":false)", R"("stopped":"no")"), "'stopped'"},
      {json_with(R"("server":"s1")", R"("server":"")"), "'server'"},
      {json_with(R"("peers":[)", R"("peers":{"a":[)"), "not a valid JSON"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(parse_error(c.text), HasSubstr(c.expected));
  }
  EXPECT_THAT(parse_error(json_with(R"("dscp":46)", R"("dscp":99)")), HasSubstr("peers[1]"));
  EXPECT_THAT(parse_error(R"({"server":"s1","peers":{}})"), HasSubstr("'peers'"));
  EXPECT_THAT(parse_error(R"({"server":"s1","peers":[1]})"), HasSubstr("peers[0]"));
}

TEST(PinglistTest, RejectsWhatIsNeitherXmlNorJson) {
  EXPECT_THAT(parse_error(""), HasSubstr("neither"));
  EXPECT_THAT(parse_error("server: s1"), HasSubstr("neither"));
  EXPECT_THAT(parse_error("<Pinglist server=\"s1\">"), HasSubstr("XML"));
  EXPECT_THAT(parse_error("<Other server=\"s1\"/>"), HasSubstr("<Pinglist>"));
  EXPECT_THAT(parse_error("{\"server\":"), HasSubstr("JSON"));
}

TEST(PinglistTest, FailedParseLeavesOutputUntouched) {
  Pinglist p = sample();
  std::string error;
  EXPECT_FALSE(parse_pinglist(xml_with("dscp=\"0\"", "dscp=\"64\""), &p, &error));
  EXPECT_EQ(p, sample());
}

}  // namespace
}  // namespace pingmesh::model
