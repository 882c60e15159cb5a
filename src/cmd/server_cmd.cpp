// `pingmesh server`: the central process: controller API, collector (ingest and queries),
// analyzer (alerts and verdicts) and the web UI on one port, each stage adding its routes to one
// router. Wiring only: the work is in the stage libraries.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "cmd/commands.hpp"
#include "collector/collector.hpp"
#include "cmd/config_flags.hpp"
#include "common/http.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/static_files.hpp"
#include "controller/api.hpp"
#include "controller/server_config.hpp"
#include "controller/topology_service.hpp"
#include "model/document.hpp"
#include "model/topology_json.hpp"
#include "pinglist/service.hpp"
#include "topology/store.hpp"
#ifdef PINGMESH_HAVE_ANALYZE
#include "analyze/analyzer.hpp"
#endif

namespace pingmesh::cmd {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read the file");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string url_host(const std::string& host) {
  return host.find(':') == std::string::npos ? host : "[" + host + "]";
}

/// Imports a topology file (JSON or YAML) through the service, so it is validated like an API
/// import.
void import_file(controller::TopologyService& service, const std::string& path) {
  auto doc = model::parse_document(read_file(path), path);
  model::Topology t;
  try {
    t = model::topology_from_json(doc, service.limits());
  } catch (const model::ValidationError& e) {
    throw std::runtime_error(path + ": " + e.field() + ": " + e.message());
  }
  service.import(t);
  spdlog::info("server: imported {}: {} DCs, {} racks, {} servers, {} rules", path, t.dcs.size(),
               t.racks.size(), t.servers.size(), t.rules.size());
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// The built web UI: --web-dir, else web/dist beside the source tree the binary was built from
/// (build/src/cmd/pingmesh -> web/dist), else ./web/dist. Empty when none has an index.html.
std::string find_web_dir(const std::string& configured) {
  namespace fs = std::filesystem;
  if (!configured.empty()) return configured;
  std::vector<fs::path> candidates;
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
      candidates.push_back(dir / "web" / "dist");
      candidates.push_back(dir / "share" / "pingmesh" / "web");
    }
  }
  candidates.emplace_back("web/dist");
  for (const auto& c : candidates) {
    if (fs::exists(c / "index.html", ec)) return c.string();
  }
  return {};
}

/// Runs `fn` every `period` on a thread until stop(); stop() joins.
class Periodic {
 public:
  Periodic(std::chrono::milliseconds period, std::function<void()> fn)
      : thread_([this, period, fn = std::move(fn)] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
            lock.unlock();
            fn();
            lock.lock();
          }
        }) {}
  ~Periodic() { stop(); }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

int run_server(controller::ServerConfig cfg, const collector::RemoteWriteOptions& rw_options) {
  log::init(cfg.log_level);
  controller::check_server_config(cfg);
  auto listen = controller::parse_listen(cfg.listen);
  if (cfg.min_interval_ms < model::kMinIntervalMs) {
    spdlog::warn(
        "server: --min-interval-ms {} is below the 10000 ms safety floor; use it only "
        "in a lab",
        cfg.min_interval_ms);
  }
  if (cfg.admin_token.empty()) {
    spdlog::warn(
        "server: no admin token configured (--admin-token or PINGMESH_ADMIN_TOKEN): "
        "changes are accepted only from loopback clients");
  }
  if (cfg.agent_token.empty()) {
    spdlog::info("server: no agent token configured: heartbeats are accepted from anyone");
  }

  // Block the stop signals before any thread starts, so every thread inherits the mask and the
  // main thread alone receives them in sigwait().
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  metrics::Registry registry;
  metrics::register_process_metrics(registry);
  auto store = topology::open_sqlite_store(cfg.db);
  pinglist::PinglistService pinglists(&registry);
  controller::TopologyServiceOptions topo_options;
  topo_options.limits.min_interval_ms = cfg.min_interval_ms;
  controller::TopologyService topology(store.get(), &pinglists, topo_options, &registry);
  if (!cfg.import_file.empty()) import_file(topology, cfg.import_file);

  controller::ApiOptions api_options;
  api_options.auth = {cfg.admin_token, cfg.agent_token};
  api_options.heartbeat_interval_s = cfg.heartbeat_interval_s;
  controller::Api api(topology, pinglists, registry, api_options);
  controller::Auth auth(api_options.auth);

#ifdef PINGMESH_HAVE_ANALYZE
  analyze::AnalyzerOptions analyzer_options;
  // Rules changed through the API survive a restart: without --alert-rules they live in the data
  // directory (the paper's defaults until the first change).
  analyzer_options.rules_path =
      cfg.alert_rules.empty() ? cfg.data_dir + "/alert-rules.json" : cfg.alert_rules;
  analyzer_options.history_path = cfg.data_dir + "/analyzer.db";
  analyzer_options.retention.max_age_ms = int64_t{cfg.alert_history_days} * 86400 * 1000;
  analyzer_options.retention.max_rows = cfg.alert_history_max;
  analyzer_options.notify.webhooks = cfg.webhooks;
  analyzer_options.notify.alertmanagers = cfg.alertmanagers;
  analyzer_options.notify.external_url =
      "http://" + url_host(listen.host) + ":" + std::to_string(listen.port);
  analyzer_options.authorize_write = [&auth](const http::Request& r) {
    return auth.check(r, controller::Access::kAdmin);
  };
  analyzer_options.authorize_agent = [&auth](const http::Request& r) {
    return auth.check(r, controller::Access::kAgent);
  };
  analyze::Analyzer analyzer(analyzer_options, &registry,
                             [&topology] { return topology.snapshot(); });
#endif

  // The collector accepts results only from servers the controller knows.
  collector::CollectorOptions collector_options;
  collector_options.data_dir = cfg.data_dir;
  collector_options.agent_token = cfg.agent_token;
  collector_options.windows.grace_s = cfg.grace_s;
#ifdef PINGMESH_HAVE_ANALYZE
  collector_options.on_accepted = [&analyzer](const v1::ResultBatch& batch, int64_t now_us) {
    analyzer.observe(batch, now_us / 1000);
  };
#endif
  // Declared before the collector: stopped after the collector's last flush, destroyed after it.
  std::unique_ptr<collector::RemoteWriter> remote_write;
  if (!rw_options.url.empty()) {
    remote_write = std::make_unique<collector::RemoteWriter>(rw_options, &registry);
    collector_options.on_window_stored =
        [rw = remote_write.get(), window_s = collector_options.windows.window_s](
            std::shared_ptr<const collector::Window> w, const collector::Names& names) {
          rw->on_window(std::move(w), window_s, &names);
        };
    spdlog::info("server: remote write to {} ({} series)", rw_options.url,
                 rw_options.pairs ? "DC-pair, rack-pair and server-pair" : "DC-pair and rack-pair");
  }
  collector::Collector collector(
      collector_options, &registry, [&pinglists](std::string_view name) {
        auto plan = pinglists.plan();
        return plan != nullptr && plan->index.count(name) > 0;
      });

  std::vector<controller::RoutePart> parts;
  parts.push_back({[&api](http::Router& r) { api.add_routes(r); }, nullptr});
  parts.push_back({[&collector](http::Router& r) { collector.register_routes(r); },
                   nlohmann::json::parse(collector::openapi_fragment())});
#ifdef PINGMESH_HAVE_ANALYZE
  parts.push_back({[&analyzer](http::Router& r) { analyzer.register_routes(r); },
                   analyze::Analyzer::openapi_fragment()});
#endif
  auto router = controller::build_router(parts, registry);
  auto api_handler = controller::make_handler(router, registry);

  // The web UI: static files for every GET that is not an API, metrics or health path.
  std::shared_ptr<http::StaticFiles> web;
  auto web_dir = find_web_dir(cfg.web_dir);
  if (web_dir.empty()) {
    spdlog::warn(
        "server: web UI not found (build it with scripts/build.sh, or pass --web-dir); "
        "serving the API only");
  } else {
    web = std::make_shared<http::StaticFiles>(web_dir);
    spdlog::info("server: web UI from {} ({} files, {} KB)", web_dir, web->file_count(),
                 web->total_bytes() / 1024);
  }
  http::Handler handler = [api_handler, web](const http::Request& request) {
    if (web && (request.method == "GET" || request.method == "HEAD") &&
        !request.path.starts_with("/api/") && request.path != "/metrics" &&
        request.path != "/healthz") {
      if (auto r = web->serve(request)) return *r;
    }
    return api_handler(request);
  };

  http::ServerOptions http_options;
  http_options.address = listen.host;
  http_options.port = listen.port;
  http_options.threads = cfg.threads;
  http_options.max_body_bytes = cfg.max_body_bytes;
  http::Server server(http_options, handler);
  collector.start();
#ifdef PINGMESH_HAVE_ANALYZE
  analyzer.start();
  Periodic evaluation(std::chrono::milliseconds(2000),
                      [&analyzer] { analyzer.evaluate(now_ms()); });
#endif
  server.start();
  registry.gauge_fn("pingmesh_http_bad_requests",
                    "Requests refused before routing (malformed HTTP, body over the limit: 413).",
                    [&server] { return static_cast<double>(server.stats().bad_requests); });
  registry.gauge_fn("pingmesh_http_requests", "HTTP requests served since start.",
                    [&server] { return static_cast<double>(server.stats().requests); });
  registry.gauge_fn("pingmesh_http_open_connections", "Open HTTP connections.",
                    [&server] { return static_cast<double>(server.stats().open_connections); });
  registry.gauge_fn("pingmesh_http_connections_rejected",
                    "Connections closed at once because of the connection limit.",
                    [&server] { return static_cast<double>(server.stats().connections_rejected); });

  auto snap = topology.snapshot();
  spdlog::info("server: listening on http://{}:{}, db {}, data {}, {} DCs, {} servers{}",
               url_host(listen.host), server.port(), cfg.db, cfg.data_dir, snap->dcs.size(),
               snap->servers.size(), snap->settings.stopped ? " (probing STOPPED)" : "");

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("server: {} received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
#ifdef PINGMESH_HAVE_ANALYZE
  evaluation.stop();
  analyzer.stop();
#endif
  collector.stop();
  if (remote_write) remote_write->stop();
  topology.stop();
  spdlog::info("server: stopped");
  return 0;
}

}  // namespace

void add_server_command(CLI::App& app, std::function<int()>* run) {
  auto cfg = std::make_shared<controller::ServerConfig>();
  auto config_file = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "server",
      "Run the central server: controller (topology, pinglists), collector (results,\n"
      "aggregates), analyzer (alerts, fault localization), REST API and web UI on one port.\n"
      "Every flag can also be set in a YAML --config file under the same name (e.g.\n"
      "'listen: 0.0.0.0:9000'); flags win over the environment, which wins over the file.");
  cmd->add_option("--listen", cfg->listen,
                  "Address and port to serve HTTP on: 127.0.0.1:9000, [::1]:9000, 0.0.0.0:9000;\n"
                  "port 0 picks a free port (logged at start)")
      ->capture_default_str();
  cmd->add_option("--db", cfg->db, "SQLite file holding the topology (created if missing)")
      ->capture_default_str();
  cmd->add_option("--config", *config_file, "YAML file with any of these flags as keys")
      ->check(CLI::ExistingFile);
  cmd->add_option("--admin-token", cfg->admin_token,
                  "Bearer token required for every change (env PINGMESH_ADMIN_TOKEN). Without\n"
                  "one, changes are accepted only from loopback clients");
  cmd->add_option("--agent-token", cfg->agent_token,
                  "Bearer token agents send with heartbeats (env PINGMESH_AGENT_TOKEN). Without\n"
                  "one, heartbeats are accepted from anyone");
  cmd->add_option("--threads", cfg->threads, "HTTP I/O threads")->capture_default_str();
  cmd->add_option("--log-level", cfg->log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  cmd->add_option("--min-interval-ms", cfg->min_interval_ms,
                  "Smallest probe interval accepted in DCs and rules. Below 10000 only in a lab\n"
                  "(logged as a warning)")
      ->capture_default_str();
  cmd->add_option("--import", cfg->import_file,
                  "Topology file (JSON or YAML, see docs/CONFIG.md) imported at start, replacing\n"
                  "the stored one")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-body-bytes", cfg->max_body_bytes,
                  "Largest accepted request body; larger ones get 413")
      ->capture_default_str();
  cmd->add_option("--heartbeat-interval-s", cfg->heartbeat_interval_s,
                  "Heartbeat period told to agents")
      ->capture_default_str();
  cmd->add_option("--data-dir", cfg->data_dir,
                  "Directory of the collector's write-ahead log and aggregates and of the alert\n"
                  "history, analyzer.db (created if missing)")
      ->capture_default_str();
  cmd->add_option("--web-dir", cfg->web_dir,
                  "Built web UI to serve at / (default: web/dist of the source tree, if built)");
  cmd->add_option(
      "--alert-rules", cfg->alert_rules,
      "Alert rules file (JSON or YAML); rules changed through the API are saved to it.\n"
      "Default: DATA-DIR/alert-rules.json; while it does not exist, the paper's\n"
      "defaults (loss > 0.1 %, P99 > 5 ms)");
  cmd->add_option("--webhook", cfg->webhooks,
                  "URL receiving alert notifications as JSON POSTs (repeatable)");
  cmd->add_option(
      "--alertmanager", cfg->alertmanagers,
      "Prometheus Alertmanager base URL receiving alerts on /api/v2/alerts (repeatable)");
  cmd->add_option("--alert-history-days", cfg->alert_history_days,
                  "Resolved alerts are kept this many days in the alert history")
      ->capture_default_str();
  cmd->add_option("--alert-history-max", cfg->alert_history_max,
                  "At most this many resolved alerts are kept (the oldest go first)")
      ->capture_default_str();
  cmd->add_option("--grace", cfg->grace_s,
                  "Seconds a 1-minute window keeps accepting late results after it ends; it is\n"
                  "then stored in the data dir and exported (remote write)")
      ->capture_default_str();

  auto rw_flags = std::make_shared<RemoteWriteFlags>();
  add_remote_write_flags(cmd, rw_flags.get());

  cmd->callback([run, cfg, config_file, cmd, rw_flags] {
    *run = [cfg, config_file, cmd, rw_flags] {
      controller::ServerConfig c = *cfg;
      std::set<std::string> given;
      for (const auto& key : controller::server_config_keys()) {
        if (cmd->count("--" + key) > 0) given.insert(key);
      }
      auto rw_given = given_remote_write_keys(cmd);
      given.insert(rw_given.begin(), rw_given.end());
      collector::RemoteWriteOptions rw;
      controller::ExtraConfigKeys extra{
          collector::remote_write_keys(), [&rw](const std::string& k, const std::string& v) {
            collector::set_remote_write_option(&rw, k, v);
          }};
      if (!config_file->empty()) controller::load_server_config(*config_file, &c, given, &extra);
      auto env = [&](const char* name, const char* key, std::string* out) {
        const char* v = std::getenv(name);
        if (v != nullptr && *v != '\0' && !given.contains(key)) *out = v;
      };
      env("PINGMESH_ADMIN_TOKEN", "admin-token", &c.admin_token);
      env("PINGMESH_AGENT_TOKEN", "agent-token", &c.agent_token);
      finish_remote_write_options(cmd, *rw_flags, rw_given, &rw);
      return run_server(std::move(c), rw);
    };
  });
}

}  // namespace pingmesh::cmd
