#include "agent/agent.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <mutex>
#include <stdexcept>

#include "agent/batch.hpp"
#include "agent/control.hpp"
#include "agent/engine.hpp"
#include "agent/metrics.hpp"
#include "agent/privileges.hpp"
#include "agent/result_buffer.hpp"
#include "agent/result_log.hpp"
#include "agent/trace.hpp"
#include "agent/uploader.hpp"
#include "common/hash.hpp"
#include "common/http.hpp"
#include "common/router.hpp"

#ifndef PINGMESH_VERSION
#define PINGMESH_VERSION "0.1.0"
#endif

namespace pingmesh::agent {

const char* agent_version() { return PINGMESH_VERSION; }

namespace {

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

struct Agent::Impl {
  AgentConfig config;
  metrics::Registry registry;
  AgentMetrics metrics{registry};
  ResultBuffer buffer;
  std::unique_ptr<ResultLog> result_log;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Control> control;
  std::unique_ptr<Uploader> uploader;
  std::unique_ptr<Tracer> tracer;
  std::vector<std::unique_ptr<http::Server>> http_servers;
  http::Router router;
  std::mutex location_mu;
  AgentIdentity identity;
  bool started = false;

  explicit Impl(AgentConfig c) : config(std::move(c)), buffer(config.buffer_results) {}

  void on_results(std::vector<ProbeResult>* results) {
    if (result_log) result_log->write(*results);
    std::size_t dropped = buffer.push(results);
    if (dropped > 0) {
      metrics.dropped_buffer_full.inc(static_cast<double>(dropped));
      metrics.limit_hit(Limit::kBufferFull, static_cast<double>(dropped),
                        fmt::format("result buffer of {} results is full (collector slow or down)",
                                    buffer.capacity()));
    }
  }

  void on_pinglist(std::shared_ptr<const model::Pinglist> p) {
    if (p) {
      std::lock_guard lock(location_mu);
      identity.dc = p->dc;
      identity.rack = p->rack;
    }
    if (tracer) tracer->set_pinglist(p);
    engine->set_pinglist(std::move(p));
  }

  http::Response ping(const http::Request& req) {
    uint32_t size = 0;
    if (auto s = req.query_param("size")) {
      auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), size);
      if (ec != std::errc() || p != s->data() + s->size() || size > model::kMaxPayloadBytes) {
        return http::Response::error(400, "size must be 0..65536", "size");
      }
    }
    metrics.http_pings.inc();
    return http::Response::text(std::string(size, 'p'), 200, "application/octet-stream");
  }

  void start_http() {
    router.add("GET", "/ping", [this](const http::Request& r) { return ping(r); });
    router.add("GET", "/metrics", [this](const http::Request&) {
      return http::Response::text(registry.render(), 200, "text/plain; version=0.0.4");
    });
    router.add("GET", "/healthz",
               [](const http::Request&) { return http::Response::json(R"({"status":"ok"})"); });
    std::vector<std::string> addrs = config.listen_addresses;
    if (addrs.empty()) addrs.push_back("::");
    uint16_t port = config.http_port;
    for (const auto& a : addrs) {
      http::ServerOptions o;
      o.address = a;
      o.port = port;
      o.threads = 1;
      o.max_body_bytes = 4096;
      o.idle_timeout = std::chrono::seconds(10);
      o.max_connections = config.responder_max_connections;
      o.server_header = "pingmesh-agent";
      auto server = std::make_unique<http::Server>(o, [this](const http::Request& r) {
        http::Request copy = r;
        return router.dispatch(copy);
      });
      server->start();
      port = server->port();
      http_servers.push_back(std::move(server));
    }
  }
};

Agent::Agent(AgentConfig config) {
  AgentConfig& c = config;
  if (c.name.empty()) c.name = host_name();
  check(model::valid_name(c.name),
        "--name: '" + c.name + "' is not a valid server name ([A-Za-z0-9._-], 1..64 chars)");
  if (c.addresses.empty()) c.addresses = interface_addresses();
  for (const auto& a : c.addresses) {
    check(net::IpAddress::parse(a).has_value(), "--address: '" + a + "' is not an IP address");
  }
  for (const auto& a : c.listen_addresses) {
    check(net::IpAddress::parse(a).has_value(),
          "--listen-address: '" + a + "' is not an IP address");
  }
  check(c.server_url.rfind("http", 0) == 0, "--server: must be an http:// or https:// URL");
  if (c.collector_url.empty()) c.collector_url = c.server_url;
  check(c.collector_url.rfind("http", 0) == 0, "--collector: must be an http:// or https:// URL");
  check(c.max_rate > 0, "--max-rate: must be > 0");
  check(c.max_inflight > 0, "--max-inflight: must be > 0");
  check(c.buffer_results > 0, "--buffer-results: must be > 0");
  check(c.batch_size > 0, "--batch-size: must be > 0");
  check(c.probe_timeout_ms > 0, "--probe-timeout-ms: must be > 0");
  check(c.trace_max_rate > 0 && c.trace_max_rate <= 10000,
        "--trace-max-rate: must be in (0, 10000]");
  check(c.slot_ms >= 1 && c.slot_ms <= 100, "--slot-ms: must be 1..100");
  impl_ = std::make_unique<Impl>(std::move(config));
}

Agent::~Agent() { stop(); }

void Agent::start() {
  Impl& m = *impl_;
  const AgentConfig& c = m.config;
  if (m.started) return;
  m.identity.name = c.name;
  m.identity.address = c.addresses.empty() ? "" : c.addresses.front();
  if (!c.result_log.empty()) {
    m.result_log = std::make_unique<ResultLog>(c.result_log, c.result_log_max_bytes);
  }

  EngineOptions eo;
  for (const auto& a : c.listen_addresses) eo.listen_addresses.push_back(*net::IpAddress::parse(a));
  eo.tcp_port = c.tcp_port;
  eo.udp_port = c.udp_port;
  eo.probe_timeout_ms = c.probe_timeout_ms;
  eo.responder_max_connections = c.responder_max_connections;
  eo.responder_idle_timeout_ms = c.responder_idle_timeout_ms;
  eo.schedule.min_interval_ms =
      c.lab_min_interval_ms > 0 ? c.lab_min_interval_ms : model::kMinIntervalMs;
  eo.schedule.max_payload_bytes = model::kMaxPayloadBytes;
  eo.schedule.slot_us = int64_t{c.slot_ms} * 1000;
  eo.schedule.max_rate = c.max_rate;
  eo.schedule.max_inflight = c.max_inflight;
  eo.schedule.seed = hash::hash64(c.name);
  if (c.lab_min_interval_ms > 0) {
    spdlog::warn("agent: lab override: probe intervals down to {} ms are allowed",
                 c.lab_min_interval_ms);
  }
  m.engine = std::make_unique<Engine>(eo, m.metrics,
                                      [&m](std::vector<ProbeResult>* r) { m.on_results(r); });
  m.engine->open();

  // Everything that needs privileges is open: drop them before any other thread exists.
  if (c.drop_privileges) {
    std::string problem = drop_capabilities();
    if (!problem.empty()) spdlog::warn("agent: dropping capabilities: {}", problem);
  }

  ControlOptions co;
  co.server_url = trim_slash(c.server_url);
  co.token = c.token;
  co.name = c.name;
  co.hostname = host_name();
  co.addresses = c.addresses;
  co.dc = c.dc;
  co.version = agent_version();
  co.capabilities = {"tcp", "udp", "http"};
  if (m.engine->icmp_available(false) || m.engine->icmp_available(true)) {
    co.capabilities.insert(co.capabilities.begin(), "icmp");
  }
  if (c.trace_interval_ms > 0) co.capabilities.push_back("trace");
  co.heartbeat_interval_ms = c.heartbeat_interval_ms;
  co.pull_interval_ms = c.pull_interval_ms;
  co.max_failed_pulls = c.max_failed_pulls;
  m.control = std::make_unique<Control>(
      co, m.metrics,
      [&m](std::shared_ptr<const model::Pinglist> p) { m.on_pinglist(std::move(p)); });

  TracerOptions to;
  to.server_url = trim_slash(c.server_url);
  to.token = c.token;
  to.name = c.name;
  to.poll_interval_ms = c.trace_interval_ms;
  to.max_rate = c.trace_max_rate;
  m.tracer = std::make_unique<Tracer>(to);

  UploaderOptions uo;
  uo.url = trim_slash(c.collector_url) + "/api/v1/results";
  uo.token = c.token;
  uo.batch_size = c.batch_size;
  uo.batch_interval_ms = c.batch_interval_ms;
  uo.backoff.initial_ms = c.upload_backoff_ms;
  uo.backoff.max_ms = std::max(c.upload_backoff_max_ms, c.upload_backoff_ms);
  uo.backoff.max_attempts = c.upload_attempts;
  m.uploader = std::make_unique<Uploader>(
      uo,
      [&m] {
        std::lock_guard lock(m.location_mu);
        return m.identity;
      },
      m.buffer, m.metrics);

  metrics::register_process_metrics(m.registry);
  m.registry.gauge_fn("pingmesh_agent_buffer_results", "Results waiting for upload",
                      [&m] { return static_cast<double>(m.buffer.size()); });
  m.registry.gauge_fn("pingmesh_agent_buffer_capacity", "Capacity of the result buffer",
                      [&m] { return static_cast<double>(m.buffer.capacity()); });
  m.registry.gauge_fn(
      "pingmesh_agent_pinglist_age_seconds",
      "Seconds since a pull last confirmed the pinglist (-1 = never)", [&m] {
        int64_t t = m.control->last_confirmed_unix_s();
        if (t == 0) return -1.0;
        return static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count() -
                                   t);
      });
  m.registry.gauge_fn("pingmesh_agent_pinglist_pulls_failed_consecutive",
                      "Consecutive failed pinglist pulls",
                      [&m] { return static_cast<double>(m.control->consecutive_failures()); });

  m.engine->start();
  m.start_http();
  m.uploader->start();
  m.tracer->start();
  m.control->start();
  m.started = true;
  spdlog::info("agent: {} up: TCP {} UDP {} HTTP {}; controller {}, collector {}", c.name,
               tcp_port(), udp_port(), http_port(), c.server_url, c.collector_url);
}

void Agent::stop() {
  Impl& m = *impl_;
  if (!m.started) return;
  m.started = false;
  m.control->stop();
  m.tracer->stop();
  m.engine->stop();
  m.uploader->stop();
  for (auto& s : m.http_servers) s->stop();
}

uint16_t Agent::tcp_port() const { return impl_->engine ? impl_->engine->tcp_port() : 0; }
uint16_t Agent::udp_port() const { return impl_->engine ? impl_->engine->udp_port() : 0; }
uint16_t Agent::http_port() const {
  return impl_->http_servers.empty() ? 0 : impl_->http_servers.front()->port();
}
const std::string& Agent::name() const { return impl_->config.name; }
bool Agent::probing() const { return impl_->control && impl_->control->probing(); }
uint32_t Agent::failed_pulls() const {
  return impl_->control ? impl_->control->consecutive_failures() : 0;
}
std::size_t Agent::buffered() const { return impl_->buffer.size(); }
metrics::Registry& Agent::registry() { return impl_->registry; }

}  // namespace pingmesh::agent
