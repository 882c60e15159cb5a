#include "agent/trace.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "agent/sockets.hpp"
#include "common/http.hpp"

namespace pingmesh::agent {

namespace {

constexpr uint8_t kIcmpTimeExceeded = 11;
constexpr uint8_t kIcmpUnreachable = 3;
constexpr uint8_t kIcmp6Unreachable = 1;
constexpr uint8_t kIcmp6TimeExceeded = 3;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

net::IpAddress from_sockaddr(const sockaddr* sa) {
  net::IpAddress a;
  if (sa->sa_family == AF_INET) {
    a.family = 4;
    std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    a.family = 6;
    std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
  }
  return a;
}

using sock::to_sockaddr;

/// Reads an unsigned integer member in [min, max]; absent = keep *out.
bool read_uint(const nlohmann::json& j, const char* key, uint32_t min, uint32_t max, uint32_t* out,
               std::string* error, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end()) return true;
  if (!it->is_number_unsigned() || it->get<uint64_t>() < min || it->get<uint64_t>() > max) {
    *error = path + "." + key + ": must be an integer in " + std::to_string(min) + ".." +
             std::to_string(max);
    return false;
  }
  *out = it->get<uint32_t>();
  return true;
}

}  // namespace

bool parse_trace_requests(std::string_view body, const TraceLimits& limits,
                          std::vector<TraceRequest>* out, std::string* error) {
  out->clear();
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("requests") || !j["requests"].is_array()) {
    *error = "requests: must be an array";
    return false;
  }
  const auto& list = j["requests"];
  if (list.size() > limits.max_requests) {
    *error = "requests: at most " + std::to_string(limits.max_requests) + " per poll";
    return false;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& r = list[i];
    std::string path = "requests[" + std::to_string(i) + "]";
    if (!r.is_object()) {
      *error = path + ": must be an object";
      return false;
    }
    TraceRequest t;
    if (!r.contains("id") || !r["id"].is_string() || r["id"].get<std::string>().empty() ||
        r["id"].get<std::string>().size() > 128) {
      *error = path + ".id: must be a string of 1..128 characters";
      return false;
    }
    t.id = r["id"].get<std::string>();
    std::optional<net::IpAddress> dst;
    if (r.contains("dst") && r["dst"].is_string())
      dst = net::IpAddress::parse(r["dst"].get<std::string>());
    if (!dst) {
      *error = path + ".dst: must be an IPv4 or IPv6 address";
      return false;
    }
    t.dst = *dst;
    uint32_t dport = 0;
    if (!r.contains("dport")) {
      *error = path + ".dport: required";
      return false;
    }
    if (!read_uint(r, "dport", 1, 65535, &dport, error, path)) return false;
    t.dport = static_cast<uint16_t>(dport);
    if (!r.contains("sports") || !r["sports"].is_array() || r["sports"].empty() ||
        r["sports"].size() > limits.max_ports) {
      *error =
          path + ".sports: must be an array of 1.." + std::to_string(limits.max_ports) + " ports";
      return false;
    }
    for (std::size_t k = 0; k < r["sports"].size(); ++k) {
      const auto& p = r["sports"][k];
      std::string ppath = path + ".sports[" + std::to_string(k) + "]";
      if (!p.is_number_unsigned() || p.get<uint64_t>() < 1 || p.get<uint64_t>() > 65535) {
        *error = ppath + ": must be a port 1..65535";
        return false;
      }
      auto port = p.get<uint16_t>();
      if (std::find(t.sports.begin(), t.sports.end(), port) != t.sports.end()) {
        *error = ppath + ": duplicate port";
        return false;
      }
      t.sports.push_back(port);
    }
    if (!read_uint(r, "max_ttl", 1, limits.max_ttl, &t.max_ttl, error, path) ||
        !read_uint(r, "hop_attempts", 1, limits.max_hop_attempts, &t.hop_attempts, error, path) ||
        !read_uint(r, "loss_probes", 0, limits.max_loss_probes, &t.loss_probes, error, path) ||
        !read_uint(r, "timeout_ms", 10, limits.max_timeout_ms, &t.timeout_ms, error, path)) {
      return false;
    }
    out->push_back(std::move(t));
  }
  return true;
}

std::optional<IcmpReport> parse_errqueue(const msghdr& msg) {
  // CMSG_NXTHDR takes a non-const msghdr; it only reads it.
  auto* m = const_cast<msghdr*>(&msg);
  for (cmsghdr* c = CMSG_FIRSTHDR(m); c != nullptr; c = CMSG_NXTHDR(m, c)) {
    bool v4 = c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR;
    bool v6 = c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR;
    if (!v4 && !v6) continue;
    if (c->cmsg_len < CMSG_LEN(sizeof(sock_extended_err))) continue;
    sock_extended_err ee;
    std::memcpy(&ee, CMSG_DATA(c), sizeof(ee));
    if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6)
      return std::nullopt;
    IcmpReport r;
    r.type = ee.ee_type;
    r.code = ee.ee_code;
    bool icmp6 = ee.ee_origin == SO_EE_ORIGIN_ICMP6;
    if (r.type == (icmp6 ? kIcmp6TimeExceeded : kIcmpTimeExceeded)) {
      r.kind = IcmpReport::Kind::kTimeExceeded;
    } else if (r.type == (icmp6 ? kIcmp6Unreachable : kIcmpUnreachable)) {
      r.kind = IcmpReport::Kind::kUnreachable;
    }
    // The offender address follows the extended error (SO_EE_OFFENDER).
    std::size_t have = c->cmsg_len - CMSG_LEN(sizeof(sock_extended_err));
    const auto* sa = reinterpret_cast<const unsigned char*>(CMSG_DATA(c)) + sizeof(ee);
    sockaddr_storage ss{};
    std::memcpy(&ss, sa, std::min(have, sizeof(ss)));
    auto* s = reinterpret_cast<const sockaddr*>(&ss);
    if ((s->sa_family == AF_INET && have >= sizeof(sockaddr_in)) ||
        (s->sa_family == AF_INET6 && have >= sizeof(sockaddr_in6))) {
      r.offender = from_sockaddr(s);
    }
    return r;
  }
  return std::nullopt;
}

std::string trace_results_json(const std::string& agent, const std::vector<TraceResult>& results) {
  nlohmann::ordered_json j;
  j["agent"] = agent;
  j["results"] = nlohmann::ordered_json::array();
  for (const auto& r : results) {
    nlohmann::ordered_json o;
    o["id"] = r.id;
    o["dst"] = r.dst.to_string();
    o["dport"] = r.dport;
    o["duration_ms"] = r.duration_ms;
    o["ports"] = nlohmann::ordered_json::array();
    for (const auto& p : r.ports) {
      o["ports"].push_back({{"sport", p.sport},
                            {"hops", p.hops},
                            {"reached", p.reached},
                            {"sent", p.sent},
                            {"answered", p.answered},
                            {"errors", p.errors}});
    }
    j["results"].push_back(std::move(o));
  }
  return j.dump();
}

namespace {

/// One source port's probes, one socket at a time.
struct Slot {
  PortTrace* out = nullptr;
  int fd = -1;
  int64_t sent_us = 0;
  int64_t deadline_us = 0;
  bool tracing = true;  ///< TTL phase, then the loss phase
  uint32_t ttl = 1;
  uint32_t attempt = 0;
  bool timed_out = false;  ///< loss probe already counted lost, draining
  bool done = false;
};

void close_rst(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

/// Opens a non-blocking socket from `sport` with the given TTL and starts connecting; -1 when
/// it could not (port in use, no route...).
int start_probe(const TraceRequest& r, uint16_t sport, uint32_t ttl) {
  bool v6 = r.dst.is_v6();
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  int hops = static_cast<int>(ttl);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (v6) {
    setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof(one));
    setsockopt(fd, SOL_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops));
  } else {
    setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
    setsockopt(fd, SOL_IP, IP_TTL, &hops, sizeof(hops));
  }
  sockaddr_storage local{};
  net::IpAddress any;
  any.family = v6 ? 6 : 4;
  socklen_t len = to_sockaddr(any, sport, &local);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), len) != 0) {
    close(fd);
    return -1;
  }
  sockaddr_storage dst{};
  len = to_sockaddr(r.dst, r.dport, &dst);
  if (connect(fd, reinterpret_cast<sockaddr*>(&dst), len) != 0 && errno != EINPROGRESS) {
    close_rst(fd);
    return -1;
  }
  return fd;
}

/// What a socket's event means.
enum class Outcome { kPending, kReached, kHop, kNoAnswer };

Outcome read_outcome(int fd, std::string* hop) {
  alignas(cmsghdr) char control[512];
  char data[64];
  iovec iov{data, sizeof(data)};
  sockaddr_storage from{};
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof(from);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) >= 0) {
    if (auto rep = parse_errqueue(msg)) {
      if (rep->offender.family != 0) *hop = rep->offender.to_string();
      return Outcome::kHop;
    }
  }
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err == 0 || err == ECONNREFUSED) return Outcome::kReached;
  if (err == EINPROGRESS || err == EALREADY) return Outcome::kPending;
  return Outcome::kNoAnswer;
}

}  // namespace

TraceResult run_trace(const TraceRequest& request, double max_rate, uint32_t drain_ms,
                      const std::atomic<bool>* cancel) {
  TraceResult result;
  result.id = request.id;
  result.dst = request.dst;
  result.dport = request.dport;
  result.ports.resize(request.sports.size());
  std::vector<Slot> slots(request.sports.size());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    result.ports[i].sport = request.sports[i];
    slots[i].out = &result.ports[i];
  }
  const int64_t started = now_us();
  const int64_t timeout_us = int64_t{request.timeout_ms} * 1000;
  const int64_t drain_us = std::max<int64_t>(int64_t{drain_ms} * 1000, timeout_us);
  const double interval_us = max_rate > 0 ? 1e6 / max_rate : 0;
  double next_send_us = static_cast<double>(started);
  // A hard bound on the whole request, whatever the network does.
  const int64_t give_up_us =
      started + (int64_t{request.max_ttl} * request.hop_attempts + request.loss_probes + 2) *
                    (timeout_us + drain_us);

  auto finish_probe = [&](Slot& s) {
    if (s.fd >= 0) close_rst(s.fd);
    s.fd = -1;
  };
  auto advance_ttl = [&](Slot& s, bool answered_hop) {
    if (answered_hop || s.attempt >= request.hop_attempts) {
      if (s.out->hops.size() < s.ttl) s.out->hops.resize(s.ttl);
      ++s.ttl;
      s.attempt = 0;
      if (s.ttl > request.max_ttl) s.tracing = false;
    }
  };
  auto after_loss_probe = [&](Slot& s) {
    if (s.out->sent >= request.loss_probes) s.done = true;
  };

  while (true) {
    int64_t now = now_us();
    if (now > give_up_us || (cancel != nullptr && cancel->load())) break;
    bool all_done = true;
    for (auto& s : slots) {
      if (s.done && s.fd < 0) continue;
      all_done = false;
      if (s.fd >= 0 || s.done) continue;
      if (!s.tracing && s.out->sent >= request.loss_probes) {
        s.done = true;
        continue;
      }
      if (static_cast<double>(now) < next_send_us) continue;
      next_send_us = std::max(next_send_us + interval_us, static_cast<double>(now) - 1e5);
      uint32_t ttl = s.tracing ? s.ttl : 255;
      s.fd = start_probe(request, s.out->sport, ttl);
      s.sent_us = now;
      s.deadline_us = now + timeout_us;
      s.timed_out = false;
      if (s.tracing) {
        ++s.attempt;
        if (s.fd < 0) {
          ++s.out->errors;
          advance_ttl(s, false);
        }
      } else {
        ++s.out->sent;
        if (s.fd < 0) {
          ++s.out->errors;
          after_loss_probe(s);
        }
      }
    }
    if (all_done) break;

    std::vector<pollfd> fds;
    std::vector<Slot*> owners;
    int64_t wake = give_up_us;
    for (auto& s : slots) {
      if (s.fd >= 0) {
        fds.push_back({s.fd, static_cast<short>(POLLOUT | POLLERR), 0});
        owners.push_back(&s);
        wake = std::min(wake, s.deadline_us);
      } else if (!s.done) {
        wake = std::min(wake, static_cast<int64_t>(next_send_us));
      }
    }
    int wait_ms = static_cast<int>(std::clamp<int64_t>((wake - now_us() + 999) / 1000, 0, 100));
    int n = poll(fds.data(), fds.size(), wait_ms);
    if (n < 0 && errno != EINTR) break;
    now = now_us();
    for (std::size_t i = 0; i < fds.size(); ++i) {
      Slot& s = *owners[i];
      if (fds[i].revents != 0) {
        std::string hop;
        Outcome o = read_outcome(s.fd, &hop);
        if (o == Outcome::kPending) continue;
        if (s.tracing) {
          if (o == Outcome::kHop) {
            if (s.out->hops.size() < s.ttl) s.out->hops.resize(s.ttl);
            s.out->hops[s.ttl - 1] = hop;
            finish_probe(s);
            advance_ttl(s, true);
          } else if (o == Outcome::kReached) {
            s.out->reached = true;
            if (s.out->hops.size() < s.ttl) s.out->hops.resize(s.ttl);
            s.out->hops[s.ttl - 1] = request.dst.to_string();
            finish_probe(s);
            s.tracing = false;
          } else {
            finish_probe(s);
            advance_ttl(s, false);
          }
        } else {
          // An answer after the timeout was counted lost; it only ends the drain.
          if (o == Outcome::kReached && !s.timed_out) ++s.out->answered;
          finish_probe(s);
          after_loss_probe(s);
        }
        continue;
      }
      if (now < s.deadline_us) continue;
      if (s.tracing) {
        finish_probe(s);
        advance_ttl(s, false);
      } else if (!s.timed_out) {
        s.timed_out = true;
        s.deadline_us = s.sent_us + drain_us;
      } else {
        finish_probe(s);
        after_loss_probe(s);
      }
    }
  }
  for (auto& s : slots) finish_probe(s);
  result.duration_ms = (now_us() - started) / 1000;
  return result;
}

Tracer::Tracer(TracerOptions options) : options_(std::move(options)) {
  while (!options_.server_url.empty() && options_.server_url.back() == '/') {
    options_.server_url.pop_back();
  }
}

Tracer::~Tracer() { stop(); }

void Tracer::start() {
  if (options_.poll_interval_ms == 0 || thread_.joinable()) return;
  stopping_ = false;
  cancel_ = false;
  thread_ = std::thread([this] { run(); });
}

void Tracer::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cancel_ = true;
  cv_.notify_all();
  thread_.join();
}

void Tracer::set_pinglist(const std::shared_ptr<const model::Pinglist>& pinglist) {
  std::set<std::pair<net::IpAddress, uint16_t>> allowed;
  if (pinglist && !pinglist->stopped) {
    for (const auto& e : pinglist->entries) {
      if (e.protocol == model::Protocol::kTcp) allowed.emplace(e.address, e.port);
    }
  }
  std::lock_guard lock(mu_);
  allowed_ = std::move(allowed);
}

void Tracer::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    try {
      poll_once();
    } catch (const std::exception& e) {
      spdlog::warn("agent: tracer: {}", e.what());
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms),
                 [&] { return stopping_; });
  }
}

void Tracer::poll_once() {
  http::Client client;
  http::ClientRequest req;
  req.url = options_.server_url + "/api/v1/traces/requests/" + http::url_encode(options_.name);
  req.timeout = std::chrono::milliseconds(options_.request_timeout_ms);
  if (!options_.token.empty())
    req.headers.emplace_back("authorization", "Bearer " + options_.token);
  auto resp = client.perform(req);
  if (resp.status != 200) return;  // 204: nothing to trace; errors: try at the next poll
  std::vector<TraceRequest> requests;
  std::string error;
  if (!parse_trace_requests(resp.body, options_.limits, &requests, &error)) {
    ++refused_;
    spdlog::warn("agent: tracer: rejected trace requests: {}", error);
    return;
  }
  std::vector<TraceResult> results;
  for (const auto& r : requests) {
    bool allowed;
    {
      std::lock_guard lock(mu_);
      allowed = allowed_.count({r.dst, r.dport}) > 0;
      if (stopping_) return;
    }
    if (!allowed) {
      ++refused_;
      spdlog::warn(
          "agent: tracer: refused trace {} to {} port {}: not a TCP target of the "
          "current pinglist",
          r.id, r.dst.to_string(), r.dport);
      continue;
    }
    results.push_back(run_trace(r, options_.max_rate, 3500, &cancel_));
    if (cancel_) return;
    ++traced_;
    spdlog::info("agent: tracer: traced {} port {} from {} ports in {} ms ({})", r.dst.to_string(),
                 r.dport, r.sports.size(), results.back().duration_ms, r.id);
  }
  if (results.empty()) return;
  http::ClientRequest post;
  post.method = "POST";
  post.url = options_.server_url + "/api/v1/traces";
  post.timeout = std::chrono::milliseconds(options_.request_timeout_ms);
  post.headers = {{"content-type", "application/json"}};
  if (!options_.token.empty())
    post.headers.emplace_back("authorization", "Bearer " + options_.token);
  post.body = trace_results_json(options_.name, results);
  auto up = client.perform(post);
  if (up.status < 200 || up.status >= 300) {
    spdlog::warn("agent: tracer: uploading trace results failed: {}",
                 up.status == 0 ? up.error : "HTTP " + std::to_string(up.status));
  }
}

}  // namespace pingmesh::agent
