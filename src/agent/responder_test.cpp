// The responders alone, on loopback: they run on their own thread, with no probe engine at all,
// echo our UDP probes and TCP payloads, ignore foreign datagrams and hold their connection cap.
#include "agent/responder.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "agent/wire.hpp"
#include "common/metrics.hpp"

namespace pingmesh::agent {
namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/// Waits up to 2 s for `fd` to be readable.
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 2000) == 1;
}

template <typename F>
bool eventually(F f) {
  for (int i = 0; i < 200; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

struct Fixture {
  metrics::Registry registry;
  AgentMetrics metrics{registry};
  Responder responder;
  explicit Fixture(std::size_t max_connections = 16)
      : responder(
            ResponderOptions{{*net::IpAddress::parse("127.0.0.1")}, 0, 0, max_connections, 10000},
            metrics) {
    responder.open();
    responder.start();
  }
};

TEST(Responder, EchoesOurUdpProbesOnItsOwnThreadAndIgnoresOtherDatagrams) {
  Fixture f;
  ASSERT_NE(f.responder.udp_port(), 0);
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to = loopback(f.responder.udp_port());
  std::vector<uint8_t> req(200);
  encode_udp_probe(req, UdpType::kRequest, 42, 0x1122334455667788ULL);
  ASSERT_EQ(::sendto(fd, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            200);
  ASSERT_TRUE(readable(fd));
  std::vector<uint8_t> reply(1000);
  ASSERT_EQ(::recv(fd, reply.data(), reply.size(), 0), 200) << "same size as the request";
  UdpType type{};
  uint32_t seq = 0;
  uint64_t token = 0;
  ASSERT_TRUE(decode_udp_probe({reply.data(), 200}, &type, &seq, &token));
  EXPECT_EQ(type, UdpType::kReply);
  EXPECT_EQ(seq, 42u);
  EXPECT_EQ(token, 0x1122334455667788ULL);

  // A reply, or anything not ours, is never answered (no reflection between responders).
  std::vector<uint8_t> junk(64, 'x');
  ::sendto(fd, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  ::sendto(fd, reply.data(), 200, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  EXPECT_TRUE(eventually([&] { return f.metrics.udp_ignored.value() == 2; }));
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 200), 0) << "no answer to a foreign datagram";
  EXPECT_EQ(f.metrics.udp_echoed.value(), 1);
  ::close(fd);
}

TEST(Responder, EchoesATcpPayload) {
  Fixture f;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to = loopback(f.responder.tcp_port());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  std::vector<uint8_t> out(5000, 'a');
  ASSERT_EQ(::send(fd, out.data(), out.size(), 0), 5000);
  std::size_t got = 0;
  std::vector<uint8_t> in(8192);
  while (got < out.size() && readable(fd)) {
    ssize_t n = ::recv(fd, in.data(), in.size(), 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(got, out.size());
  EXPECT_EQ(f.metrics.tcp_accepted.value(), 1);
  ::close(fd);
  EXPECT_TRUE(eventually([&] { return f.metrics.tcp_connections.value() == 0; }));
}

TEST(Responder, ResetsConnectionsOverItsCapAndCountsThem) {
  Fixture f(1);
  sockaddr_in to = loopback(f.responder.tcp_port());
  int a = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(a, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  ASSERT_TRUE(eventually([&] { return f.metrics.tcp_connections.value() == 1; }));
  int b = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(b, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  ASSERT_TRUE(readable(b));
  char c;
  EXPECT_EQ(::recv(b, &c, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET) << "the connection over the cap is reset";
  EXPECT_NE(f.registry.render().find(
                "pingmesh_agent_limit_hits_total{limit=\"responder_connections\"} 1"),
            std::string::npos);
  EXPECT_EQ(f.metrics.tcp_connections.value(), 1);
  ::close(a);
  ::close(b);
}

TEST(Responder, StopIsIdempotentAndClosesTheListeners) {
  auto f = std::make_unique<Fixture>();
  uint16_t port = f->responder.tcp_port();
  f->responder.stop();
  f->responder.stop();
  f.reset();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to = loopback(port);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  EXPECT_EQ(errno, ECONNREFUSED);
  ::close(fd);
}

}  // namespace
}  // namespace pingmesh::agent
