// Whole agents on loopback, in-process: each agent binds its own 127.0.0.x address (the loopback
// mesh mode), pulls its pinglist from a fake controller and uploads to a fake collector, both
// written here with http::Server + http::Router so these tests do not depend on the real ones.
#include "agent/agent.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "agent/batch.hpp"
#include "common/http.hpp"
#include "common/router.hpp"
#include "model/pinglist.hpp"

namespace pingmesh::agent {
namespace {

using namespace std::chrono_literals;

/// Serves pinglists by name with ETags; can be made to fail (503) or to serve garbage.
class FakeController {
 public:
  FakeController() {
    router_.add("POST", "/api/v1/heartbeat", [this](const http::Request& r) {
      auto j = nlohmann::json::parse(r.body, nullptr, false);
      std::lock_guard lock(mu_);
      if (j.is_object()) heartbeats_[j.value("name", "")] = j;
      return http::Response::json(R"({"pinglist_url":"/api/v1/pinglist/)" +
                                  j.value("name", std::string()) + "\"}");
    });
    router_.add("GET", "/api/v1/pinglist/{name}", [this](const http::Request& r) {
      std::lock_guard lock(mu_);
      ++pulls_;
      if (down_) return http::Response::error(503, "down");
      auto it = docs_.find(r.params[0]);
      if (it == docs_.end()) return http::Response::error(404, "no pinglist");
      std::string etag = "\"" + it->second.second + "\"";
      if (r.header("if-none-match") == etag) {
        http::Response resp;
        resp.status = 304;
        resp.headers.emplace_back("etag", etag);
        return resp;
      }
      http::Response resp = http::Response::text(it->second.first, 200, "application/xml");
      resp.headers.emplace_back("etag", etag);
      return resp;
    });
    http::ServerOptions o;
    o.port = 0;
    server_ = std::make_unique<http::Server>(o, [this](const http::Request& r) {
      http::Request copy = r;
      return router_.dispatch(copy);
    });
    server_->start();
  }
  ~FakeController() { server_->stop(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  void set(const model::Pinglist& p) {
    std::lock_guard lock(mu_);
    docs_[p.server] = {model::to_xml(p), p.version};
  }
  void set_raw(const std::string& name, std::string body, std::string version) {
    std::lock_guard lock(mu_);
    docs_[name] = {std::move(body), std::move(version)};
  }
  void set_down(bool down) {
    std::lock_guard lock(mu_);
    down_ = down;
  }
  nlohmann::json heartbeat(const std::string& name) {
    std::lock_guard lock(mu_);
    return heartbeats_[name];
  }

 private:
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> docs_;
  std::map<std::string, nlohmann::json> heartbeats_;
  bool down_ = false;
  int pulls_ = 0;
};

/// Receives result batches; answers `status` (200 by default) and keeps what it acked.
class FakeCollector {
 public:
  FakeCollector() {
    router_.add("POST", "/api/v1/results", [this](const http::Request& r) {
      std::lock_guard lock(mu_);
      if (r.header("content-type") != "application/x-protobuf" ||
          r.header("content-encoding") != "snappy" || r.header("authorization") != "Bearer t0k") {
        return http::Response::error(400, "bad headers");
      }
      v1::ResultBatch b;
      if (!decode_batch(r.body, &b)) return http::Response::error(400, "bad batch");
      attempts_[{b.agent(), b.batch_id()}]++;
      if (status_ != 200) return http::Response::error(status_, "not now");
      if (!acked_.insert({b.agent(), b.batch_id()}).second)
        return http::Response::json("{}");  // idempotent
      dropped_before_ += b.dropped_before();
      for (const auto& res : b.results()) {
        const auto& peer = b.peers(static_cast<int>(res.peer()));
        results_.push_back({b.agent(), peer.name(), res});
      }
      return http::Response::json("{}");
    });
    http::ServerOptions o;
    o.port = 0;
    server_ = std::make_unique<http::Server>(o, [this](const http::Request& r) {
      http::Request copy = r;
      return router_.dispatch(copy);
    });
    server_->start();
  }
  ~FakeCollector() { server_->stop(); }

  struct Row {
    std::string agent;
    std::string peer;
    v1::Result result;
  };
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  void set_status(int s) {
    std::lock_guard lock(mu_);
    status_ = s;
  }
  std::vector<Row> rows() {
    std::lock_guard lock(mu_);
    return results_;
  }
  std::size_t count(const std::function<bool(const Row&)>& pred) {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& r : results_) n += pred(r) ? 1 : 0;
    return n;
  }
  uint64_t dropped_before() {
    std::lock_guard lock(mu_);
    return dropped_before_;
  }
  int max_attempts() {
    std::lock_guard lock(mu_);
    int m = 0;
    for (auto& [id, n] : attempts_) m = std::max(m, n);
    return m;
  }

 private:
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  std::mutex mu_;
  int status_ = 200;
  std::map<std::pair<std::string, uint64_t>, int> attempts_;  // batch ids are unique per agent
  std::set<std::pair<std::string, uint64_t>> acked_;
  std::vector<Row> results_;
  uint64_t dropped_before_ = 0;
};

AgentConfig lab_config(const std::string& name, const std::string& addr, const std::string& server,
                       const std::string& collector) {
  AgentConfig c;
  c.name = name;
  c.server_url = server;
  c.collector_url = collector;
  c.token = "t0k";
  c.addresses = {addr};
  c.listen_addresses = {addr};
  c.tcp_port = c.udp_port = c.http_port = 0;
  c.lab_min_interval_ms = 50;
  c.probe_timeout_ms = 1000;
  c.heartbeat_interval_ms = 200;
  c.pull_interval_ms = 100;
  c.batch_interval_ms = 100;
  c.batch_size = 1000;
  c.upload_backoff_ms = 50;
  c.upload_backoff_max_ms = 200;
  c.drop_privileges = false;  // several agents share this test process
  c.log_level = "warn";
  return c;
}

model::PinglistEntry entry(const std::string& target, const std::string& addr,
                           model::Protocol proto, uint16_t port, uint32_t payload = 0,
                           uint32_t interval_ms = 100) {
  model::PinglistEntry e;
  e.target = target;
  e.address = *net::IpAddress::parse(addr);
  e.protocol = proto;
  e.port = port;
  e.payload_bytes = payload;
  e.interval_ms = interval_ms;
  e.level = model::Level::kIntraRack;
  e.dst_dc = "dc1";
  e.dst_rack = "r1";
  return e;
}

model::Pinglist pinglist(const std::string& server, std::vector<model::PinglistEntry> entries,
                         const std::string& version) {
  model::Pinglist p;
  p.server = server;
  p.dc = "dc1";
  p.rack = "r1";
  p.version = version;
  p.entries = std::move(entries);
  return p;
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 5s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

/// Sum of a metric's series whose line starts with `prefix` in the registry's rendering.
double metric_sum(Agent& a, const std::string& prefix) {
  std::string text = a.registry().render();
  double sum = 0;
  std::size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    if (pos > 0 && text[pos - 1] != '\n') {
      ++pos;
      continue;
    }
    auto eol = text.find('\n', pos);
    auto sp = text.rfind(' ', eol);
    sum += std::stod(text.substr(sp + 1, eol - sp - 1));
    pos = eol;
  }
  return sum;
}

/// GET of a URL.
http::ClientResponse get(const std::string& url) {
  http::Client client;
  http::ClientRequest req;
  req.url = url;
  return client.perform(req);
}

/// A port on 127.0.0.1 that nothing listens on.
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// A TCP listener on 127.0.0.1 (a free port, written to `addr`) with the given backlog; -1 when
/// it cannot be opened.
int listen_loopback(int backlog, sockaddr_in* addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(*addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(addr), len) != 0 || ::listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool can_open(int family, int type, int protocol) {
  int fd = ::socket(family, type, protocol);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool icmp_possible(int family = AF_INET) {
  int proto = family == AF_INET ? static_cast<int>(IPPROTO_ICMP) : static_cast<int>(IPPROTO_ICMPV6);
  return can_open(family, SOCK_DGRAM, proto) || can_open(family, SOCK_RAW, proto);
}

TEST(AgentLoopback, TwoAgentsProbeEachOtherOverEveryProtocol) {
  FakeController ctl;
  FakeCollector col;
  Agent a(lab_config("agent-a", "127.0.0.2", ctl.url(), col.url()));
  Agent b(lab_config("agent-b", "127.0.0.3", ctl.url(), col.url()));
  a.start();
  b.start();
  uint16_t dead = closed_port();
  auto mesh = [&](Agent& peer, const std::string& peer_addr) {
    std::vector<model::PinglistEntry> v = {
        entry(peer.name(), peer_addr, model::Protocol::kTcp, peer.tcp_port()),
        entry(peer.name(), peer_addr, model::Protocol::kTcp, peer.tcp_port(), 20000, 150),
        entry(peer.name(), peer_addr, model::Protocol::kUdp, peer.udp_port(), 200),
        entry(peer.name(), peer_addr, model::Protocol::kHttp, peer.http_port(), 1000),
        entry("nobody", "127.0.0.1", model::Protocol::kTcp, dead),
    };
    if (icmp_possible()) v.push_back(entry(peer.name(), peer_addr, model::Protocol::kIcmp, 0, 56));
    return v;
  };
  ctl.set(pinglist("agent-a", mesh(b, "127.0.0.3"), "0000000000000001"));
  ctl.set(pinglist("agent-b", mesh(a, "127.0.0.2"), "0000000000000002"));

  auto ok = [&](const std::string& agent, v1::Protocol p) {
    return col.count([&](const FakeCollector::Row& r) {
      return r.agent == agent && r.result.protocol() == p && r.result.outcome() == v1::OK;
    });
  };
  std::vector<v1::Protocol> protos = {v1::TCP, v1::UDP, v1::HTTP};
  if (icmp_possible()) protos.push_back(v1::ICMP);
  ASSERT_TRUE(eventually([&] {
    for (auto p : protos) {
      if (ok("agent-a", p) < 3 || ok("agent-b", p) < 3) return false;
    }
    return true;
  })) << "every protocol answered in both directions";
  EXPECT_TRUE(a.probing());
  EXPECT_TRUE(b.probing());

  for (const auto& row : col.rows()) {
    const auto& r = row.result;
    if (row.peer == "nobody") {
      EXPECT_EQ(r.outcome(), v1::REFUSED) << "RST from a closed port is REFUSED";
      continue;
    }
    EXPECT_EQ(row.peer, row.agent == "agent-a" ? "agent-b" : "agent-a");
    if (r.outcome() != v1::OK) continue;
    EXPECT_GT(r.rtt_us(), 0u);
    EXPECT_LT(r.rtt_us(), 200000u) << "loopback RTT";
    EXPECT_GT(r.timestamp_us(), 1'600'000'000'000'000);
    if (r.protocol() == v1::TCP && r.payload_bytes() > 0) {
      EXPECT_EQ(r.payload_bytes(), 20000u) << "payload echoed in full";
      EXPECT_GT(r.payload_rtt_us(), 0u);
    }
    if (r.protocol() == v1::UDP) {
      EXPECT_EQ(r.payload_bytes(), 200u);
      EXPECT_GT(r.seq(), 0u);
    }
    if (r.protocol() == v1::HTTP) {
      EXPECT_EQ(r.payload_bytes(), 1000u);
      EXPECT_GT(r.connect_us(), 0u);
      EXPECT_GE(r.ttfb_us(), r.connect_us());
      EXPECT_GE(r.rtt_us(), r.ttfb_us());
    }
  }
  EXPECT_GT(col.count([](const FakeCollector::Row& r) { return r.peer == "nobody"; }), 0u);
  EXPECT_GT(col.count([](const FakeCollector::Row& r) {
    return r.result.protocol() == v1::TCP && r.result.payload_bytes() == 20000 &&
           r.result.outcome() == v1::OK;
  }),
            0u)
      << "TCP probes with a payload echoed";
  EXPECT_GT(col.count([](const FakeCollector::Row& r) {
    return r.result.protocol() == v1::TCP && r.result.payload_bytes() == 0 &&
           r.result.outcome() == v1::OK;
  }),
            0u)
      << "TCP probes without payload";

  // Heartbeats carry what the controller needs.
  auto hb = ctl.heartbeat("agent-a");
  EXPECT_EQ(hb["addresses"][0], "127.0.0.2");
  EXPECT_NE(std::find(hb["capabilities"].begin(), hb["capabilities"].end(), "tcp"),
            hb["capabilities"].end());

  // /metrics on the agent's HTTP port.
  auto resp = get("http://127.0.0.2:" + std::to_string(a.http_port()) + "/metrics");
  ASSERT_EQ(resp.status, 200);
  EXPECT_NE(resp.body.find("pingmesh_agent_probes_total{protocol=\"tcp\",outcome=\"ok\"}"),
            std::string::npos);
  EXPECT_NE(resp.body.find("pingmesh_agent_rtt_seconds_bucket{level=\"intra-rack\""),
            std::string::npos);
  EXPECT_NE(resp.body.find("pingmesh_agent_pinglist_info{version=\"0000000000000001\"} 1"),
            std::string::npos);
  EXPECT_NE(resp.body.find("process_resident_memory_bytes"), std::string::npos);
  // /ping never answers above 64 KiB.
  auto big = get("http://127.0.0.2:" + std::to_string(a.http_port()) + "/ping?size=70000");
  EXPECT_EQ(big.status, 400);
  a.stop();
  b.stop();
}

TEST(AgentLoopback, Ipv6AllProtocolsWithDscp) {
  if (!can_open(AF_INET6, SOCK_DGRAM, 0)) GTEST_SKIP() << "no IPv6 on this host";
  FakeController ctl;
  FakeCollector col;
  Agent a(lab_config("six", "::1", ctl.url(), col.url()));
  a.start();
  std::vector<model::PinglistEntry> v = {
      entry("six", "::1", model::Protocol::kTcp, a.tcp_port()),
      entry("six", "::1", model::Protocol::kUdp, a.udp_port(), 100),
      entry("six", "::1", model::Protocol::kHttp, a.http_port(), 10),
  };
  bool icmp6 = icmp_possible(AF_INET6);
  if (icmp6) v.push_back(entry("six", "::1", model::Protocol::kIcmp, 0, 32));
  for (auto& e : v) e.dscp = 46;  // EF
  ctl.set(pinglist("six", v, "0000000000000006"));
  auto ok = [&](v1::Protocol p) {
    return col.count([&](const FakeCollector::Row& r) {
      return r.result.protocol() == p && r.result.outcome() == v1::OK && r.result.dscp() == 46;
    });
  };
  EXPECT_TRUE(eventually([&] {
    return ok(v1::TCP) > 2 && ok(v1::UDP) > 2 && ok(v1::HTTP) > 2 && (!icmp6 || ok(v1::ICMP) > 2);
  })) << "IPv6 probes with DSCP 46 answered";
  a.stop();
}

TEST(AgentLoopback, IcmpEchoBetweenAgents) {
  if (!icmp_possible()) {
    GTEST_SKIP() << "neither ping sockets (net.ipv4.ping_group_range) nor raw sockets "
                    "(CAP_NET_RAW) are available";
  }
  FakeController ctl;
  FakeCollector col;
  Agent a(lab_config("icmp-a", "127.0.0.10", ctl.url(), col.url()));
  Agent b(lab_config("icmp-b", "127.0.0.11", ctl.url(), col.url()));
  a.start();
  b.start();
  ctl.set(pinglist("icmp-a", {entry("icmp-b", "127.0.0.11", model::Protocol::kIcmp, 0, 64, 50)},
                   "0000000000000101"));
  ctl.set(pinglist("icmp-b", {entry("icmp-a", "127.0.0.10", model::Protocol::kIcmp, 0, 64, 50)},
                   "0000000000000102"));
  auto ok = [&](const std::string& agent) {
    return col.count([&](const FakeCollector::Row& r) {
      return r.agent == agent && r.result.outcome() == v1::OK && r.result.rtt_us() > 0 &&
             r.result.rtt_us() < 100000;
    });
  };
  EXPECT_TRUE(eventually([&] { return ok("icmp-a") >= 5 && ok("icmp-b") >= 5; }))
      << "both agents' raw sockets see all echo replies; each must keep only its own";
  EXPECT_EQ(col.count([](const FakeCollector::Row& r) { return r.result.outcome() != v1::OK; }),
            0u);
  a.stop();
  b.stop();
}

TEST(AgentLoopback, ManyIcmpProbesOfOneSlotLeaveInBatchesAndAreAllAnswered) {
  if (!icmp_possible()) GTEST_SKIP() << "no ping socket and no raw socket";
  // 200 targets due in the same 50 ms slot: the engine sends them with sendmmsg() in batches of
  // at most 64 (4 calls per slot); every probe must still get its own sequence, TX timestamp key
  // and answer.
  FakeController ctl;
  FakeCollector col;
  AgentConfig c = lab_config("burst", "127.0.0.20", ctl.url(), col.url());
  c.slot_ms = 50;
  c.max_rate = 100000;
  Agent a(c);
  a.start();
  std::vector<model::PinglistEntry> v;
  for (int i = 1; i <= 200; ++i) {
    v.push_back(entry("t" + std::to_string(i), "127.0.1." + std::to_string(i),
                      model::Protocol::kIcmp, 0, 16, 50));
  }
  ctl.set(pinglist("burst", v, "0000000000000201"));
  auto ok = [&] {
    return col.count([](const FakeCollector::Row& r) {
      return r.result.outcome() == v1::OK && r.result.rtt_us() > 0 && r.result.rtt_us() < 100000;
    });
  };
  EXPECT_TRUE(eventually([&] { return ok() >= 2000; }, 15s)) << ok() << " OK results";
  a.stop();
  EXPECT_EQ(col.count([](const FakeCollector::Row& r) { return r.result.outcome() != v1::OK; }),
            0u);
  std::set<std::string> peers;
  for (const auto& r : col.rows()) peers.insert(r.peer);
  EXPECT_EQ(peers.size(), 200u) << "every target answered";
}

TEST(AgentLoopback, TcpHandshakeStillInSynSentFinishesOnItsEpollEvent) {
  // A handshake-only TCP probe is not in epoll: the loop reads TCP_INFO at its next wake-up and
  // only a probe still in SYN_SENT then goes to epoll. Here the target's accept queue is full
  // (backlog 0, one connection waiting), so the first SYN is dropped; the queue is emptied
  // 300 ms later and the kernel's SYN retransmission (~1 s) connects. The probe must end as
  // DROP with a ~1 s RTT and one retransmission, from its epoll event, not as a timeout.
  FakeController ctl;
  FakeCollector col;
  AgentConfig c = lab_config("synsent", "127.0.0.21", ctl.url(), col.url());
  c.probe_timeout_ms = 4000;
  Agent a(c);
  a.start();
  sockaddr_in la{};
  int lfd = listen_loopback(0, &la);
  ASSERT_GE(lfd, 0);
  int filler = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(filler, reinterpret_cast<sockaddr*>(&la), sizeof(la)), 0);  // queue full
  ctl.set(pinglist("synsent",
                   {entry("slow", "127.0.0.1", model::Protocol::kTcp, ntohs(la.sin_port), 0, 2500)},
                   "0000000000000301"));
  // Wait until the first probe's SYN has been sent and dropped (its phase puts it within 2.5 s),
  // then free the queue; the second probe starts 2.5 s after the first.
  EXPECT_TRUE(
      eventually([&] { return metric_sum(a, "pingmesh_agent_inflight_probes ") >= 1; }, 5s));
  std::this_thread::sleep_for(300ms);
  int accepted = ::accept(lfd, nullptr, nullptr);
  EXPECT_GE(accepted, 0);
  ASSERT_TRUE(eventually([&] { return col.rows().size() >= 1; }, 6s)) << "no result";
  a.stop();
  auto rows = col.rows();  // a copy: keep it alive while `r` refers into it
  const v1::Result& r = rows.front().result;
  EXPECT_EQ(r.outcome(), v1::DROP) << "connected after a SYN retransmission";
  EXPECT_GE(r.retransmits(), 1u);
  EXPECT_GT(r.rtt_us(), 900'000u);
  EXPECT_LT(r.rtt_us(), 3'000'000u);
  for (int fd : {accepted, filler, lfd}) ::close(fd);
}

TEST(AgentLoopback, ReusedTcpSocketsKeepTheSourceAddressAndTakeANewPortPerProbe) {
  // Handshake-only probes hand their socket on (connect(AF_UNSPEC), then the next connect): each
  // probe must still leave from the agent's address with a new source port (ECMP coverage), and
  // every one must be an OK handshake.
  FakeController ctl;
  FakeCollector col;
  Agent a(lab_config("reuse", "127.0.0.22", ctl.url(), col.url()));
  a.start();
  sockaddr_in la{};
  int lfd = listen_loopback(64, &la);
  ASSERT_GE(lfd, 0);
  std::vector<sockaddr_in> peers;
  std::atomic<bool> done{false};
  std::thread acceptor([&] {
    while (!done) {
      sockaddr_in from{};
      socklen_t flen = sizeof(from);
      int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&from), &flen, SOCK_NONBLOCK);
      if (fd < 0) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      peers.push_back(from);
      ::close(fd);
    }
  });
  ::fcntl(lfd, F_SETFL, O_NONBLOCK);
  ctl.set(pinglist(
      "reuse", {entry("listener", "127.0.0.1", model::Protocol::kTcp, ntohs(la.sin_port), 0, 50)},
      "0000000000000401"));
  EXPECT_TRUE(eventually([&] {
    return col.count([](const FakeCollector::Row& r) { return r.result.outcome() == v1::OK; }) >=
           20;
  }));
  a.stop();
  done = true;
  acceptor.join();
  ::close(lfd);
  EXPECT_EQ(col.count([](const FakeCollector::Row& r) { return r.result.outcome() != v1::OK; }),
            0u);
  ASSERT_GE(peers.size(), 20u);
  std::set<uint16_t> ports;
  for (const auto& p : peers) {
    EXPECT_EQ(ntohl(p.sin_addr.s_addr), 0x7f000016u) << "from the agent's address 127.0.0.22";
    ports.insert(ntohs(p.sin_port));
  }
  EXPECT_GE(ports.size() + 1, peers.size()) << "a new source port per probe";
}

TEST(AgentLoopback, AnswersLostToAFullProbeSocketAreCountedAsALimit) {
  // Answers wait in the UDP probe socket until the next slot. Here the "target" answers the
  // first probe with far more datagrams than the socket's receive buffer holds (at most a few
  // MB: net.core.rmem_max, doubled), so the kernel drops the excess before the agent's next
  // read. Those losses must show as limit_hits_total{limit="socket_buffer"}, not pass silently.
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in la{};
  la.sin_family = AF_INET;
  la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(la);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&la), len), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&la), &len), 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  FakeController ctl;
  FakeCollector col;
  AgentConfig c = lab_config("flooded", "127.0.0.23", ctl.url(), col.url());
  Agent a(c);
  a.start();
  ctl.set(pinglist(
      "flooded", {entry("flood", "127.0.0.1", model::Protocol::kUdp, ntohs(la.sin_port), 0, 1000)},
      "0000000000000501"));
  sockaddr_in from{};
  socklen_t flen = sizeof(from);
  char probe[2048];
  ASSERT_GT(::recvfrom(fd, probe, sizeof(probe), 0, reinterpret_cast<sockaddr*>(&from), &flen), 0)
      << "no probe arrived";
  std::vector<char> junk(1400, 'x');
  int sent = 0;
  for (int i = 0; i < 20000; ++i) {
    sent += ::sendto(fd, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&from), flen) > 0;
  }
  EXPECT_GT(sent, 10000);
  EXPECT_TRUE(eventually(
      [&] { return metric_sum(a, "pingmesh_agent_limit_hits_total{limit=\"socket_buffer\"}") > 0; },
      5s))
      << "the kernel's drops were not counted";
  a.stop();
  ::close(fd);
}

TEST(AgentLoopback, ControllerDownStopsProbingAfterThreeFailedPullsAndResumes) {
  FakeController ctl;
  FakeCollector col;
  Agent a(lab_config("solo", "127.0.0.4", ctl.url(), col.url()));
  a.start();
  ctl.set(pinglist("solo", {entry("solo", "127.0.0.4", model::Protocol::kTcp, a.tcp_port(), 0, 50)},
                   "00000000000000a1"));
  ASSERT_TRUE(eventually([&] { return a.probing() && !col.rows().empty(); }));

  ctl.set_down(true);
  ASSERT_TRUE(eventually([&] { return !a.probing(); })) << "stops after 3 failed pulls";
  EXPECT_GE(a.failed_pulls(), 3u);
  std::this_thread::sleep_for(300ms);  // in-flight probes finish, last batch goes out
  std::size_t before = col.rows().size();
  double probes_before = metric_sum(a, "pingmesh_agent_probes_total{");
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(metric_sum(a, "pingmesh_agent_probes_total{"), probes_before) << "no probing";
  // Responders keep answering while probing is stopped.
  auto ping = get("http://127.0.0.4:" + std::to_string(a.http_port()) + "/ping?size=3");
  EXPECT_EQ(ping.status, 200);
  EXPECT_EQ(ping.body.size(), 3u);

  ctl.set_down(false);
  ASSERT_TRUE(eventually([&] { return a.probing() && col.rows().size() > before + 3; }))
      << "resumes by itself";
  a.stop();
}

TEST(AgentLoopback, KillSwitchAndNotFoundStopProbing) {
  FakeController ctl;
  FakeCollector col;
  Agent a(lab_config("ks", "127.0.0.5", ctl.url(), col.url()));
  a.start();
  auto entries =
      std::vector<model::PinglistEntry>{entry("ks", "127.0.0.5", model::Protocol::kUdp, 0, 0, 50)};
  entries[0].port = a.udp_port();
  ctl.set(pinglist("ks", entries, "00000000000000b1"));
  ASSERT_TRUE(eventually([&] { return a.probing(); }));
  auto stopped = pinglist("ks", {}, "00000000000000b2");
  stopped.stopped = true;
  ctl.set(stopped);
  ASSERT_TRUE(eventually([&] { return !a.probing(); })) << "kill switch honoured";
  std::this_thread::sleep_for(300ms);
  double probes = metric_sum(a, "pingmesh_agent_probes_total{");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(metric_sum(a, "pingmesh_agent_probes_total{"), probes);
  ctl.set(pinglist("ks", entries, "00000000000000b3"));
  ASSERT_TRUE(eventually([&] { return a.probing(); })) << "resumes when the switch is off";
  a.stop();
}

// The kill switch's exact semantics: once the engine applied the stop (pingmesh_agent_probing 0),
// no probe starts (probes_started_total freezes at once), while the probes already in flight run
// to their answer or timeout, are counted in probes_total and uploaded: completed = started.
TEST(AgentLoopback, KillSwitchStartsNoProbeAfterTheStopAndFinishesThoseInFlight) {
  FakeController ctl;
  FakeCollector col;
  Agent a(lab_config("ks2", "127.0.0.7", ctl.url(), col.url()));
  a.start();
  // A UDP socket that never answers: probes to it stay in flight for the whole probe timeout
  // (1 s), so about 20 of them are in flight at any moment.
  int sink = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(sink, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(0x7f000007);
  ASSERT_EQ(::bind(sink, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t salen = sizeof(sa);
  ::getsockname(sink, reinterpret_cast<sockaddr*>(&sa), &salen);
  auto entries = std::vector<model::PinglistEntry>{
      entry("ks2", "127.0.0.7", model::Protocol::kUdp, a.udp_port(), 0, 50),
      entry("ks2", "127.0.0.7", model::Protocol::kTcp, a.tcp_port(), 0, 50),
      entry("sink", "127.0.0.7", model::Protocol::kUdp, ntohs(sa.sin_port), 0, 50)};
  ctl.set(pinglist("ks2", entries, "00000000000000d1"));
  auto started = [&] { return metric_sum(a, "pingmesh_agent_probes_started_total{"); };
  auto completed = [&] { return metric_sum(a, "pingmesh_agent_probes_total{"); };
  auto timeouts = [&] {
    return metric_sum(a, "pingmesh_agent_probes_total{protocol=\"udp\",outcome=\"timeout\"}");
  };
  ASSERT_TRUE(eventually([&] { return timeouts() >= 20; }, 10s)) << "sink probes time out";

  auto stopped = pinglist("ks2", {}, "00000000000000d2");
  stopped.stopped = true;
  ctl.set(stopped);
  ASSERT_TRUE(eventually([&] { return metric_sum(a, "pingmesh_agent_probing ") == 0; }))
      << "the engine applies the stop";
  double started_at_stop = started();  // a render after the one that showed the stop
  double completed_at_stop = completed();
  double timeouts_at_stop = timeouts();
  EXPECT_GT(started_at_stop - completed_at_stop, 5) << "probes were in flight at the stop";

  std::this_thread::sleep_for(1300ms);  // > probe timeout: every probe in flight has finished
  EXPECT_EQ(started(), started_at_stop) << "a probe started after the stop was applied";
  EXPECT_EQ(completed(), started_at_stop) << "every probe in flight at the stop is counted";
  EXPECT_GT(timeouts(), timeouts_at_stop) << "in-flight probes completed after the stop";
  EXPECT_EQ(metric_sum(a, "pingmesh_agent_inflight_probes "), 0);
  EXPECT_TRUE(eventually([&] { return static_cast<double>(col.rows().size()) == started_at_stop; }))
      << "uploaded " << col.rows().size() << " of " << started_at_stop;

  ctl.set(pinglist("ks2", entries, "00000000000000d3"));
  EXPECT_TRUE(eventually([&] { return started() > started_at_stop + 10; })) << "resumes";
  a.stop();
  ::close(sink);
}

TEST(AgentLoopback, MalformedPinglistKeepsTheLastGoodOne) {
  FakeController ctl;
  FakeCollector col;
  Agent a(lab_config("mf", "127.0.0.6", ctl.url(), col.url()));
  a.start();
  ctl.set(pinglist("mf", {entry("mf", "127.0.0.6", model::Protocol::kTcp, a.tcp_port(), 0, 50)},
                   "00000000000000c1"));
  ASSERT_TRUE(eventually([&] { return a.probing(); }));
  ctl.set_raw("mf", "<Pinglist server=\"mf\"><Peer name=\"x\" addr=\"not-an-ip\"/></Pinglist>",
              "00000000000000c2");
  ASSERT_TRUE(
      eventually([&] { return metric_sum(a, "pingmesh_agent_pinglist_rejected_total") >= 2; }));
  EXPECT_TRUE(a.probing());
  std::size_t n = col.rows().size();
  ASSERT_TRUE(eventually([&] { return col.rows().size() > n + 5; })) << "still probing";
  EXPECT_NE(
      a.registry().render().find("pingmesh_agent_pinglist_info{version=\"00000000000000c1\"} 1"),
      std::string::npos);
  a.stop();
}

TEST(AgentLoopback, CollectorErrorsAreRetriedWithTheSameBatchId) {
  FakeController ctl;
  FakeCollector col;
  col.set_status(503);
  Agent a(lab_config("rt", "127.0.0.7", ctl.url(), col.url()));
  a.start();
  ctl.set(pinglist("rt", {entry("rt", "127.0.0.7", model::Protocol::kTcp, a.tcp_port(), 0, 50)},
                   "00000000000000d1"));
  ASSERT_TRUE(eventually([&] { return col.max_attempts() >= 2; })) << "retried";
  col.set_status(200);
  ASSERT_TRUE(eventually([&] { return col.rows().size() >= 5; })) << "delivered after retry";
  a.stop();
}

TEST(AgentLoopback, CollectorDownResultsAreDroppedAndCounted) {
  FakeController ctl;
  FakeCollector col;
  AgentConfig c =
      lab_config("dr", "127.0.0.8", ctl.url(), "http://127.0.0.1:" + std::to_string(closed_port()));
  c.upload_attempts = 2;
  c.buffer_results = 5;  // tiny: overflow too
  c.batch_size = 3;
  Agent a(c);
  a.start();
  ctl.set(pinglist("dr",
                   {entry("dr", "127.0.0.8", model::Protocol::kTcp, a.tcp_port(), 0, 50),
                    entry("dr", "127.0.0.8", model::Protocol::kUdp, a.udp_port(), 0, 50)},
                   "00000000000000e1"));
  ASSERT_TRUE(eventually([&] {
    return metric_sum(a, "pingmesh_agent_results_dropped_total{reason=\"retries_exhausted\"}") > 0;
  })) << "uploads given up after retries";
  EXPECT_GT(metric_sum(a, "pingmesh_agent_upload_failures_total"), 1);
  a.stop();
  // Every result is uploaded (none here) or counted as dropped.
  double produced = metric_sum(a, "pingmesh_agent_probes_total{");
  double dropped = metric_sum(a, "pingmesh_agent_results_dropped_total{");
  EXPECT_GT(produced, 0);
  EXPECT_EQ(produced, dropped + metric_sum(a, "pingmesh_agent_upload_results_total"));
  EXPECT_EQ(a.buffered(), 0u);
}

TEST(AgentLoopback, DroppedCountReachesTheCollector) {
  FakeController ctl;
  FakeCollector col;
  col.set_status(400);  // rejected: dropped at once and counted
  AgentConfig c = lab_config("dc", "127.0.0.9", ctl.url(), col.url());
  Agent a(c);
  a.start();
  ctl.set(pinglist("dc", {entry("dc", "127.0.0.9", model::Protocol::kTcp, a.tcp_port(), 0, 50)},
                   "00000000000000f1"));
  ASSERT_TRUE(eventually([&] {
    return metric_sum(a, "pingmesh_agent_results_dropped_total{reason=\"rejected\"}") > 0;
  }));
  col.set_status(200);
  ASSERT_TRUE(eventually([&] { return col.dropped_before() > 0; }))
      << "the next accepted batch tells the collector how many were dropped";
  a.stop();
  double produced = metric_sum(a, "pingmesh_agent_probes_total{");
  double dropped = metric_sum(a, "pingmesh_agent_results_dropped_total{");
  double uploaded = metric_sum(a, "pingmesh_agent_upload_results_total");
  EXPECT_EQ(produced, dropped + uploaded);
  EXPECT_EQ(uploaded, static_cast<double>(col.rows().size()));
}

}  // namespace
}  // namespace pingmesh::agent
