#include "agent/trace.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

namespace pingmesh::agent {
namespace {

const TraceLimits kLimits;

std::string parse_error(const char* body) {
  std::vector<TraceRequest> out;
  std::string error;
  EXPECT_FALSE(parse_trace_requests(body, kLimits, &out, &error)) << body;
  return error;
}

TEST(Trace, ParsesRequestsWithDefaults) {
  std::vector<TraceRequest> out;
  std::string error;
  ASSERT_TRUE(parse_trace_requests(
      R"({"requests":[{"id":"t1","dst":"10.1.2.1","dport":9001,"sports":[61000,61001],
          "max_ttl":6,"loss_probes":40},{"id":"t2","dst":"fd00:1:2::1","dport":9001,"sports":[61002]}]})",
      kLimits, &out, &error))
      << error;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, "t1");
  EXPECT_EQ(out[0].dst.to_string(), "10.1.2.1");
  EXPECT_EQ(out[0].sports, (std::vector<uint16_t>{61000, 61001}));
  EXPECT_EQ(out[0].max_ttl, 6u);
  EXPECT_EQ(out[0].loss_probes, 40u);
  EXPECT_EQ(out[0].hop_attempts, TraceRequest{}.hop_attempts);
  EXPECT_TRUE(out[1].dst.is_v6());
  EXPECT_EQ(out[1].timeout_ms, TraceRequest{}.timeout_ms);
}

TEST(Trace, RejectsRequestsBeyondTheLimitsNamingTheField) {
  EXPECT_EQ(parse_error(R"({"requests":{}})"), "requests: must be an array");
  EXPECT_EQ(parse_error(R"({"requests":[{"dst":"10.0.0.1","dport":1,"sports":[1]}]})"),
            "requests[0].id: must be a string of 1..128 characters");
  EXPECT_EQ(parse_error(R"({"requests":[{"id":"a","dst":"example.com","dport":1,"sports":[1]}]})"),
            "requests[0].dst: must be an IPv4 or IPv6 address");
  EXPECT_EQ(parse_error(R"({"requests":[{"id":"a","dst":"10.0.0.1","dport":0,"sports":[1]}]})"),
            "requests[0].dport: must be an integer in 1..65535");
  EXPECT_EQ(parse_error(R"({"requests":[{"id":"a","dst":"10.0.0.1","dport":1,"sports":[1,1]}]})"),
            "requests[0].sports[1]: duplicate port");
  EXPECT_EQ(parse_error(R"({"requests":[{"id":"a","dst":"10.0.0.1","dport":1,"sports":[]}]})"),
            "requests[0].sports: must be an array of 1..64 ports");
  EXPECT_EQ(
      parse_error(
          R"({"requests":[{"id":"a","dst":"10.0.0.1","dport":1,"sports":[1],"max_ttl":64}]})"),
      "requests[0].max_ttl: must be an integer in 1..16");
  EXPECT_EQ(
      parse_error(
          R"({"requests":[{"id":"a","dst":"10.0.0.1","dport":1,"sports":[1],"loss_probes":100000}]})"),
      "requests[0].loss_probes: must be an integer in 0..256");
  std::string many = R"({"requests":[)";
  for (int i = 0; i < 5; ++i) {
    many += std::string(i ? "," : "") + R"({"id":"a","dst":"10.0.0.1","dport":1,"sports":[1]})";
  }
  many += "]}";
  EXPECT_EQ(parse_error(many.c_str()), "requests: at most 4 per poll");
}

/// A control buffer holding one extended error and its offender, as the kernel writes it.
struct ErrQueueMessage {
  alignas(cmsghdr) unsigned char control[256]{};
  msghdr msg{};

  ErrQueueMessage(int level, int type, uint8_t origin, uint8_t icmp_type, const sockaddr* offender,
                  socklen_t offender_len) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(sock_extended_err) + offender_len);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(sizeof(sock_extended_err) + offender_len);
    sock_extended_err ee{};
    ee.ee_errno = EHOSTUNREACH;
    ee.ee_origin = origin;
    ee.ee_type = icmp_type;
    std::memcpy(CMSG_DATA(c), &ee, sizeof(ee));
    std::memcpy(CMSG_DATA(c) + sizeof(ee), offender, offender_len);
  }
};

TEST(Trace, DecodesTimeExceededAndItsOffenderFromTheErrorQueue) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  inet_pton(AF_INET, "100.65.1.1", &v4.sin_addr);
  ErrQueueMessage m4(SOL_IP, IP_RECVERR, SO_EE_ORIGIN_ICMP, 11, reinterpret_cast<sockaddr*>(&v4),
                     sizeof(v4));
  auto r = parse_errqueue(m4.msg);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->kind, IcmpReport::Kind::kTimeExceeded);
  EXPECT_EQ(r->offender.to_string(), "100.65.1.1");

  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "fd01:1:1:2::2", &v6.sin6_addr);
  ErrQueueMessage m6(SOL_IPV6, IPV6_RECVERR, SO_EE_ORIGIN_ICMP6, 3,
                     reinterpret_cast<sockaddr*>(&v6), sizeof(v6));
  r = parse_errqueue(m6.msg);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->kind, IcmpReport::Kind::kTimeExceeded);
  EXPECT_EQ(r->offender.to_string(), "fd01:1:1:2::2");

  // ICMPv6 type 1 is unreachable (ICMP type 3 would be).
  ErrQueueMessage u6(SOL_IPV6, IPV6_RECVERR, SO_EE_ORIGIN_ICMP6, 1,
                     reinterpret_cast<sockaddr*>(&v6), sizeof(v6));
  EXPECT_EQ(parse_errqueue(u6.msg)->kind, IcmpReport::Kind::kUnreachable);
  ErrQueueMessage u4(SOL_IP, IP_RECVERR, SO_EE_ORIGIN_ICMP, 3, reinterpret_cast<sockaddr*>(&v4),
                     sizeof(v4));
  EXPECT_EQ(parse_errqueue(u4.msg)->kind, IcmpReport::Kind::kUnreachable);

  // A local error (not ICMP) is not a hop.
  ErrQueueMessage local(SOL_IP, IP_RECVERR, SO_EE_ORIGIN_LOCAL, 0, reinterpret_cast<sockaddr*>(&v4),
                        sizeof(v4));
  EXPECT_FALSE(parse_errqueue(local.msg).has_value());
  msghdr empty{};
  EXPECT_FALSE(parse_errqueue(empty).has_value());
}

TEST(Trace, ResultsJsonShape) {
  TraceResult r;
  r.id = "t1";
  r.dst = *net::IpAddress::parse("10.1.2.1");
  r.dport = 9001;
  r.duration_ms = 12;
  r.ports.push_back({61000, {"10.1.1.254", "100.65.1.1", "", "10.1.2.1"}, true, 40, 38, 0});
  auto j = nlohmann::json::parse(trace_results_json("d1r1h1", {r}));
  EXPECT_EQ(j["agent"], "d1r1h1");
  ASSERT_EQ(j["results"].size(), 1u);
  const auto& p = j["results"][0]["ports"][0];
  EXPECT_EQ(p["sport"], 61000);
  EXPECT_EQ(p["hops"][1], "100.65.1.1");
  EXPECT_EQ(p["hops"][2], "");
  EXPECT_EQ(p["sent"], 40);
  EXPECT_EQ(p["answered"], 38);
  EXPECT_EQ(j["results"][0]["dst"], "10.1.2.1");
}

/// A listening TCP socket on 127.0.0.1 and an ephemeral port.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(fd, 512), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { close(fd); }
};

TEST(Trace, LoopbackTraceReachesTheTargetAtTheFirstHopAndMeasuresEveryProbe) {
  Listener l;
  TraceRequest r;
  r.id = "lo";
  r.dst = *net::IpAddress::parse("127.0.0.1");
  r.dport = l.port;
  r.sports = {62101, 62102, 62103};
  r.max_ttl = 4;
  r.loss_probes = 20;
  r.timeout_ms = 500;
  auto res = run_trace(r, 2000);
  ASSERT_EQ(res.ports.size(), 3u);
  for (const auto& p : res.ports) {
    EXPECT_TRUE(p.reached) << p.sport;
    ASSERT_EQ(p.hops.size(), 1u) << p.sport;
    EXPECT_EQ(p.hops[0], "127.0.0.1");
    EXPECT_EQ(p.sent, 20u);
    // Each probe reuses its port: it must not be refused by TIME_WAIT or a half-open peer.
    EXPECT_EQ(p.answered, 20u) << p.sport;
    EXPECT_EQ(p.errors, 0u);
  }
}

TEST(Trace, RefusedConnectionsCountAsAnsweredAndTheRateLimitHolds) {
  uint16_t closed_port;
  {
    Listener l;  // take a free port, then close it: nothing listens there
    closed_port = l.port;
  }
  TraceRequest r;
  r.id = "rst";
  r.dst = *net::IpAddress::parse("127.0.0.1");
  r.dport = closed_port;
  r.sports = {62111, 62112};
  r.max_ttl = 2;
  r.loss_probes = 10;
  auto started = std::chrono::steady_clock::now();
  auto res = run_trace(r, 100);  // 22 probes at 100/s: >= ~0.1 s (a burst of 0.1 s is allowed)
  auto took = std::chrono::steady_clock::now() - started;
  for (const auto& p : res.ports) {
    EXPECT_TRUE(p.reached);
    EXPECT_EQ(p.sent, 10u);
    EXPECT_EQ(p.answered, 10u);
  }
  EXPECT_GE(took, std::chrono::milliseconds(80));
}

}  // namespace
}  // namespace pingmesh::agent
