// The responder loop: one thread, one epoll set with the TCP listeners, their connections and
// the UDP echo sockets, woken only by what arrives (and once a second while connections are
// open, to close idle ones). Connections live in a slab indexed from epoll's user data
// (tag | generation | index), so a stale event for a reused slot is ignored.
#include "agent/responder.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

#include "agent/sockets.hpp"
#include "agent/wire.hpp"
#include "model/pinglist.hpp"

namespace pingmesh::agent {

namespace {

enum Tag : uint8_t { kTagWake = 1, kTagListen, kTagConn, kTagEcho };

uint64_t make_data(Tag tag, uint32_t gen, uint32_t index) {
  return sock::event_data(tag, gen, index);
}
Tag data_tag(uint64_t d) { return static_cast<Tag>(sock::event_tag(d)); }
using sock::event_gen;
using sock::event_index;

constexpr std::size_t kMaxPayload = model::kMaxPayloadBytes;
constexpr int kMaxEvents = 64;
constexpr int kMaxReadsPerWake = 256;
constexpr int64_t kSweepNs = 1'000'000'000;

std::system_error sys_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

}  // namespace

using sock::mono_ns;
using sock::set_int;

struct Responder::Impl {
  struct Conn {
    uint32_t gen = 0;
    bool active = false;
    int fd = -1;
    int64_t last_active_ns = 0;
    std::size_t total = 0;
    std::string pending;
  };

  ResponderOptions opts;
  AgentMetrics& metrics;
  int epfd = -1;
  int wakefd = -1;
  std::vector<int> listen_fds;
  std::vector<int> echo_fds;
  uint16_t bound_tcp_port = 0;
  uint16_t bound_udp_port = 0;
  std::vector<Conn> conns;
  std::vector<uint32_t> free_conns;
  std::size_t open_conns = 0;
  int64_t next_sweep_ns = 0;
  std::vector<uint8_t> scratch = std::vector<uint8_t>(kMaxPayload + 1024);
  std::atomic<bool> stopping{false};
  std::thread thread;

  Impl(ResponderOptions o, AgentMetrics& m) : opts(std::move(o)), metrics(m) {}
  ~Impl() { close_all(); }

  void close_all() {
    auto close_fd = [](int& fd) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    };
    for (auto& c : conns) close_fd(c.fd);
    for (int& fd : listen_fds) close_fd(fd);
    for (int& fd : echo_fds) close_fd(fd);
    close_fd(epfd);
    close_fd(wakefd);
  }

  void add_fd(int fd, uint32_t events, uint64_t data) {
    sock::epoll_set(epfd, EPOLL_CTL_ADD, fd, events, data);
  }
  void mod_fd(int fd, uint32_t events, uint64_t data) {
    sock::epoll_set(epfd, EPOLL_CTL_MOD, fd, events, data);
  }

  void open() {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd < 0 || wakefd < 0) throw sys_error("agent: responder epoll/eventfd");
    add_fd(wakefd, EPOLLIN, make_data(kTagWake, 0, 0));
    std::vector<net::IpAddress> addrs = opts.listen_addresses;
    bool wildcard = addrs.empty();
    if (wildcard) {
      addrs.push_back(*net::IpAddress::parse("0.0.0.0"));
      addrs.push_back(*net::IpAddress::parse("::"));
    }
    uint16_t tcp_port = opts.tcp_port;
    uint16_t udp_port = opts.udp_port;
    for (const auto& a : addrs) {
      int fd = sock::bind_socket(SOCK_STREAM, a, tcp_port, true);
      if (fd < 0 && wildcard && a.is_v6() && errno == EAFNOSUPPORT) continue;
      if (fd < 0)
        throw sys_error(
            fmt::format("agent: cannot bind TCP responder to {} port {}", a.to_string(), tcp_port));
      if (::listen(fd, 1024) != 0) throw sys_error("agent: listen");
      tcp_port = sock::local_port(fd);
      listen_fds.push_back(fd);
      fd = sock::bind_socket(SOCK_DGRAM, a, udp_port, true);
      if (fd < 0)
        throw sys_error(fmt::format("agent: cannot bind UDP echo responder to {} port {}",
                                    a.to_string(), udp_port));
      udp_port = sock::local_port(fd);
      // Answer from the address that was asked, with the DSCP class that was asked.
      if (a.is_v4()) {
        set_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
        set_int(fd, IPPROTO_IP, IP_RECVTOS, 1);
      } else {
        set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
        set_int(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, 1);
      }
      echo_fds.push_back(fd);
    }
    bound_tcp_port = tcp_port;
    bound_udp_port = udp_port;
    for (std::size_t i = 0; i < listen_fds.size(); ++i) {
      add_fd(listen_fds[i], EPOLLIN, make_data(kTagListen, 0, static_cast<uint32_t>(i)));
    }
    for (std::size_t i = 0; i < echo_fds.size(); ++i) {
      add_fd(echo_fds[i], EPOLLIN, make_data(kTagEcho, 0, static_cast<uint32_t>(i)));
    }
  }

  void run() {
    epoll_event events[kMaxEvents];
    while (!stopping.load(std::memory_order_relaxed)) {
      int timeout = -1;
      if (open_conns > 0) {
        int64_t left = next_sweep_ns - mono_ns();
        timeout = static_cast<int>(std::max<int64_t>(0, (left + 999999) / 1000000));
      }
      int n = epoll_wait(epfd, events, kMaxEvents, timeout);
      if (n < 0 && errno != EINTR) {
        spdlog::error("agent: responder epoll_wait: {}", std::strerror(errno));
        break;
      }
      for (int i = 0; i < n; ++i) dispatch(events[i]);
      int64_t now = mono_ns();
      if (open_conns == 0) {
        next_sweep_ns = now + kSweepNs;
      } else if (now >= next_sweep_ns) {
        sweep_idle(now);
        next_sweep_ns = now + kSweepNs;
      }
    }
  }

  void dispatch(const epoll_event& ev) {
    uint64_t d = ev.data.u64;
    uint32_t index = event_index(d);
    switch (data_tag(d)) {
      case kTagWake: {
        uint64_t v;
        while (::read(wakefd, &v, sizeof(v)) > 0) {
        }
        break;
      }
      case kTagListen:
        on_accept(listen_fds[index]);
        break;
      case kTagConn:
        on_conn(index, event_gen(d), ev.events);
        break;
      case kTagEcho:
        on_echo(echo_fds[index]);
        break;
    }
  }

  void on_accept(int lfd) {
    for (int i = 0; i < kMaxReadsPerWake; ++i) {
      int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          metrics.limit_hit(Limit::kSockets, 1, "accept(): out of file descriptors");
        }
        return;
      }
      if (open_conns >= opts.max_connections) {
        metrics.limit_hit(Limit::kResponderConnections, 1,
                          fmt::format("{} open TCP responder connections", opts.max_connections));
        linger lg{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        ::close(fd);
        continue;
      }
      uint32_t index;
      if (!free_conns.empty()) {
        index = free_conns.back();
        free_conns.pop_back();
      } else {
        index = static_cast<uint32_t>(conns.size());
        conns.emplace_back();
      }
      Conn& c = conns[index];
      c.gen = (c.gen + 1) & 0xffffff;
      c.active = true;
      c.fd = fd;
      c.total = 0;
      c.pending.clear();
      c.last_active_ns = mono_ns();
      set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
      add_fd(fd, EPOLLIN, make_data(kTagConn, c.gen, index));
      ++open_conns;
      metrics.tcp_accepted.inc();
      metrics.tcp_connections.set(static_cast<double>(open_conns));
    }
  }

  void close_conn(uint32_t index, bool abortive) {
    Conn& c = conns[index];
    if (!c.active) return;
    c.active = false;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    if (abortive) {
      linger lg{1, 0};
      setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    ::close(c.fd);
    c.fd = -1;
    c.pending.clear();
    c.pending.shrink_to_fit();
    free_conns.push_back(index);
    --open_conns;
    metrics.tcp_connections.set(static_cast<double>(open_conns));
  }

  /// Echoes what the prober sent, never more than received and at most 64 KiB per connection.
  void on_conn(uint32_t index, uint32_t gen, uint32_t events) {
    if (index >= conns.size()) return;
    Conn& c = conns[index];
    if (!c.active || c.gen != gen) return;
    c.last_active_ns = mono_ns();
    if (!c.pending.empty()) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      ssize_t n = ::send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) {
        close_conn(index, true);
        return;
      }
      if (n > 0) c.pending.erase(0, static_cast<std::size_t>(n));
      if (!c.pending.empty()) return;
      mod_fd(c.fd, EPOLLIN, make_data(kTagConn, c.gen, index));
    }
    for (;;) {
      std::size_t room = kMaxPayload - c.total;
      if (room == 0) {
        close_conn(index, true);  // asked to echo more than 64 KiB
        return;
      }
      ssize_t n = ::recv(c.fd, scratch.data(), std::min(room, scratch.size()), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        close_conn(index, n < 0);
        return;
      }
      if (n < 0) return;
      c.total += static_cast<std::size_t>(n);
      ssize_t w = ::send(c.fd, scratch.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) {
        close_conn(index, true);
        return;
      }
      std::size_t written = w < 0 ? 0 : static_cast<std::size_t>(w);
      if (written < static_cast<std::size_t>(n)) {
        // Hold the rest and stop reading until it is out: memory per connection <= 64 KiB.
        c.pending.assign(reinterpret_cast<char*>(scratch.data()) + written,
                         static_cast<std::size_t>(n) - written);
        mod_fd(c.fd, EPOLLOUT, make_data(kTagConn, c.gen, index));
        return;
      }
    }
  }

  void sweep_idle(int64_t now_ns) {
    int64_t limit = int64_t{opts.idle_timeout_ms} * 1000000;
    for (uint32_t i = 0; i < conns.size(); ++i) {
      if (conns[i].active && now_ns - conns[i].last_active_ns > limit) close_conn(i, true);
    }
  }

  /// Echoes our probe datagrams (same size, marked as reply, from the address asked, with the
  /// DSCP asked); everything else is ignored and counted.
  void on_echo(int fd) {
    for (int i = 0; i < kMaxReadsPerWake; ++i) {
      sockaddr_storage from{};
      alignas(cmsghdr) char control[256];
      iovec iov{scratch.data(), scratch.size()};
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof(from);
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
      if (n < 0) return;
      if ((msg.msg_flags & MSG_TRUNC) ||
          !make_udp_reply({scratch.data(), static_cast<std::size_t>(n)})) {
        metrics.udp_ignored.inc();
        continue;
      }
      alignas(cmsghdr) char out_control[256];
      std::size_t out_len = 0;
      std::memset(out_control, 0, sizeof(out_control));
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        auto* o = reinterpret_cast<cmsghdr*>(out_control + out_len);
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo in;
          std::memcpy(&in, CMSG_DATA(c), sizeof(in));
          in_pktinfo reply{};
          reply.ipi_spec_dst = in.ipi_addr;
          o->cmsg_level = IPPROTO_IP;
          o->cmsg_type = IP_PKTINFO;
          o->cmsg_len = CMSG_LEN(sizeof(reply));
          std::memcpy(CMSG_DATA(o), &reply, sizeof(reply));
          out_len += CMSG_SPACE(sizeof(reply));
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          o->cmsg_level = IPPROTO_IPV6;
          o->cmsg_type = IPV6_PKTINFO;
          o->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
          std::memcpy(CMSG_DATA(o), CMSG_DATA(c), sizeof(in6_pktinfo));
          out_len += CMSG_SPACE(sizeof(in6_pktinfo));
        } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) ||
                   (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS)) {
          int tos = c->cmsg_level == IPPROTO_IP ? *reinterpret_cast<uint8_t*>(CMSG_DATA(c))
                                                : *reinterpret_cast<int*>(CMSG_DATA(c));
          tos &= 0xfc;  // DSCP only, never echo ECN bits
          o->cmsg_level = c->cmsg_level;
          o->cmsg_type = c->cmsg_level == IPPROTO_IP ? IP_TOS : IPV6_TCLASS;
          o->cmsg_len = CMSG_LEN(sizeof(int));
          std::memcpy(CMSG_DATA(o), &tos, sizeof(tos));
          out_len += CMSG_SPACE(sizeof(int));
        }
      }
      iovec out_iov{scratch.data(), static_cast<std::size_t>(n)};
      msghdr out{};
      out.msg_name = &from;
      out.msg_namelen = msg.msg_namelen;
      out.msg_iov = &out_iov;
      out.msg_iovlen = 1;
      if (out_len > 0) {
        out.msg_control = out_control;
        out.msg_controllen = out_len;
      }
      if (::sendmsg(fd, &out, MSG_DONTWAIT) >= 0) metrics.udp_echoed.inc();
    }
  }
};

Responder::Responder(ResponderOptions options, AgentMetrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), metrics)) {}

Responder::~Responder() { stop(); }

void Responder::open() { impl_->open(); }

void Responder::start() {
  impl_->stopping = false;
  impl_->thread = std::thread([this] { impl_->run(); });
}

void Responder::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->stopping = true;
  uint64_t one = 1;
  if (::write(impl_->wakefd, &one, sizeof(one)) < 0) {
    spdlog::warn("agent: cannot wake the responder loop: {}", std::strerror(errno));
  }
  impl_->thread.join();
}

uint16_t Responder::tcp_port() const { return impl_->bound_tcp_port; }
uint16_t Responder::udp_port() const { return impl_->bound_udp_port; }

}  // namespace pingmesh::agent
