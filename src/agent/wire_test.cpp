#include "agent/wire.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace pingmesh::agent {
namespace {

TEST(Wire, UdpProbeRoundTripAndReply) {
  std::vector<uint8_t> buf(100);
  encode_udp_probe(buf, UdpType::kRequest, 42, 0x1122334455667788ULL);
  UdpType type;
  uint32_t seq;
  uint64_t token;
  ASSERT_TRUE(decode_udp_probe(buf, &type, &seq, &token));
  EXPECT_EQ(type, UdpType::kRequest);
  EXPECT_EQ(seq, 42u);
  EXPECT_EQ(token, 0x1122334455667788ULL);
  ASSERT_TRUE(make_udp_reply(buf));
  ASSERT_TRUE(decode_udp_probe(buf, &type, &seq, &token));
  EXPECT_EQ(type, UdpType::kReply);
  EXPECT_EQ(buf.size(), 100u) << "the reply is never larger than the request";
  EXPECT_FALSE(make_udp_reply(buf)) << "replies are never answered: no ping-pong";
}

TEST(Wire, ResponderIgnoresForeignDatagrams) {
  std::vector<uint8_t> junk(64, 'x');
  EXPECT_FALSE(make_udp_reply(junk));
  std::vector<uint8_t> tiny(10, 0);
  EXPECT_FALSE(make_udp_reply(tiny));
  std::vector<uint8_t> big(kMaxDatagramBytes + 1);
  encode_udp_probe(big, UdpType::kRequest, 1, 1);
  EXPECT_FALSE(make_udp_reply(big));
}

TEST(Wire, IcmpEchoRoundTrip) {
  std::vector<uint8_t> buf(64);
  encode_icmp_echo(buf, false, 0xbeef, 7, 99);
  EXPECT_EQ(internet_checksum(buf), 0) << "checksum over a checksummed message is 0";
  // Turn it into a reply as a peer would: type 0, checksum fixed.
  buf[0] = 0;
  buf[2] = buf[3] = 0;
  uint16_t c = internet_checksum(buf);
  buf[2] = static_cast<uint8_t>(c >> 8);
  buf[3] = static_cast<uint8_t>(c);
  uint16_t id, seq;
  uint64_t token;
  ASSERT_TRUE(decode_icmp_echo_reply(buf, false, false, &id, &seq, &token));
  EXPECT_EQ(id, 0xbeef);
  EXPECT_EQ(seq, 7);
  EXPECT_EQ(token, 99u);
  std::vector<uint8_t> with_ip(20, 0);
  with_ip[0] = 0x45;
  with_ip.insert(with_ip.end(), buf.begin(), buf.end());
  ASSERT_TRUE(decode_icmp_echo_reply(with_ip, false, true, &id, &seq, &token));
  EXPECT_EQ(seq, 7);
  EXPECT_FALSE(decode_icmp_echo_reply(buf, true, false, &id, &seq, &token)) << "not ICMPv6";
}

TEST(Wire, HttpRequestBracketsIpv6) {
  EXPECT_NE(http_probe_request("::1", 9002, 10).find("Host: [::1]:9002"), std::string::npos);
  EXPECT_NE(http_probe_request("127.0.0.1", 80, 0).find("GET /ping?size=0 HTTP/1.1\r\n"),
            std::string::npos);
}

TEST(Wire, HttpParserIncremental) {
  HttpResponseParser p;
  std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
  for (char c : resp) p.feed(std::string_view(&c, 1));
  EXPECT_EQ(p.state(), HttpResponseParser::State::kDone);
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(p.body_bytes(), 5u);
}

TEST(Wire, HttpParserEdgeCases) {
  HttpResponseParser a;
  EXPECT_EQ(a.feed("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"),
            HttpResponseParser::State::kDone);
  EXPECT_EQ(a.status(), 404);
  HttpResponseParser b;
  EXPECT_EQ(b.feed("HTTP/1.1 200 OK\r\n\r\nabc"), HttpResponseParser::State::kBody);
  EXPECT_EQ(b.on_eof(), HttpResponseParser::State::kDone);
  EXPECT_EQ(b.body_bytes(), 3u);
  HttpResponseParser c;
  EXPECT_EQ(c.feed("garbage\r\n\r\n"), HttpResponseParser::State::kError);
  HttpResponseParser d;
  EXPECT_EQ(d.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc"),
            HttpResponseParser::State::kError)
      << "more body than announced";
  HttpResponseParser e;
  EXPECT_EQ(e.feed(std::string(9000, 'a')), HttpResponseParser::State::kError) << "head cap";
}

}  // namespace
}  // namespace pingmesh::agent
