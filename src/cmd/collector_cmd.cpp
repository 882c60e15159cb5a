// `pingmesh collector`: the collector as a separate role (scale-out, or tests): result ingest,
// aggregation, storage and the query API, plus /metrics and /healthz. Wiring only: the work is in
// src/collector.
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "cmd/commands.hpp"
#include "cmd/config_flags.hpp"
#include "collector/collector.hpp"
#include "common/http.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/router.hpp"

namespace pingmesh::cmd {

namespace {

struct CollectorConfig {
  std::string listen = "127.0.0.1:9003";
  std::string data_dir = "pingmesh-collector";
  std::string token;
  std::string log_level = "info";
  int threads = 8;  // handlers block on the WAL fsync; more threads share each group commit
  std::size_t max_body_bytes = 64 << 20;
  std::string retention_minute = "2d";
  std::string retention_ten_minutes = "14d";
  std::string retention_hour = "90d";
  std::string retention_day = "730d";
  int64_t grace_s = 120;
  bool no_fsync = false;
  std::string config_file;
  RemoteWriteFlags remote_write;
};

/// Parses "90", "90s", "15m", "12h", "14d" into seconds; throws naming the flag.
int64_t parse_duration(const std::string& flag, const std::string& s) {
  std::size_t pos = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  std::string unit = s.substr(pos);
  int64_t mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600
                 : unit == "d" ? 86400 : 0;
  if (pos == 0 || mult == 0 || v <= 0) {
    throw std::runtime_error(flag + " '" + s + "': expected a positive duration like 90s, 15m, "
                             "12h or 14d");
  }
  return v * mult;
}

/// Splits "host:port" or "[v6]:port".
std::pair<std::string, uint16_t> parse_listen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    throw std::runtime_error("--listen '" + s + "': expected host:port, e.g. 127.0.0.1:9003");
  }
  std::string host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  try {
    port = std::stoi(s.substr(colon + 1));
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) throw std::runtime_error("--listen '" + s + "': bad port");
  return {host, static_cast<uint16_t>(port)};
}

int run_collector(const CollectorConfig& cfg, const collector::RemoteWriteOptions& rw_options) {
  log::init(cfg.log_level);
  auto [host, port] = parse_listen(cfg.listen);
  collector::CollectorOptions options;
  options.data_dir = cfg.data_dir;
  options.agent_token = cfg.token;
  options.windows.grace_s = cfg.grace_s;
  options.retention.minute_s = parse_duration("--retention-1m", cfg.retention_minute);
  options.retention.ten_minutes_s = parse_duration("--retention-10m", cfg.retention_ten_minutes);
  options.retention.hour_s = parse_duration("--retention-1h", cfg.retention_hour);
  options.retention.day_s = parse_duration("--retention-1d", cfg.retention_day);
  options.wal_sync = !cfg.no_fsync;
  if (cfg.no_fsync) {
    spdlog::warn("collector: --no-fsync: acknowledged batches can be lost in a power failure");
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  metrics::Registry registry;
  metrics::register_process_metrics(registry);
  // Declared before the collector: stopped after the collector's last flush, destroyed after it.
  std::unique_ptr<collector::RemoteWriter> remote_write;
  if (!rw_options.url.empty()) {
    remote_write = std::make_unique<collector::RemoteWriter>(rw_options, &registry);
    options.on_window_stored = [rw = remote_write.get(), window_s = options.windows.window_s](
                                   std::shared_ptr<const collector::Window> w,
                                   const collector::Names& names) {
      rw->on_window(std::move(w), window_s, &names);
    };
    spdlog::info("collector: remote write to {} ({} series{})", rw_options.url,
                 rw_options.pairs ? "DC-pair, rack-pair and server-pair" : "DC-pair and rack-pair",
                 rw_options.external_labels.empty() ? "" : ", with external labels");
  }
  collector::Collector coll(options, &registry, nullptr);
  http::Router router;
  coll.register_routes(router);
  router.add("GET", "/metrics", [&registry](const http::Request&) {
    return http::Response::text(registry.render(), 200, "text/plain; version=0.0.4");
  });
  router.add("GET", "/healthz", [&coll](const http::Request&) {
    return coll.healthy() ? http::Response::text("ok\n")
                          : http::Response::text("WAL failed\n", 503);
  });
  http::ServerOptions http_options;
  http_options.address = host;
  http_options.port = port;
  http_options.threads = cfg.threads;
  http_options.max_body_bytes = cfg.max_body_bytes;
  http::Server server(http_options, [&router](const http::Request& r) {
    http::Request copy = r;
    return router.dispatch(copy);
  });
  coll.start();
  server.start();
  spdlog::info("collector: listening on {}:{}, data in {}", host, server.port(), cfg.data_dir);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("collector: {} received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  coll.stop();
  if (remote_write) remote_write->stop();
  spdlog::info("collector: stopped");
  return 0;
}

}  // namespace

void add_collector_command(CLI::App& app, std::function<int()>* run) {
  auto cfg = std::make_shared<CollectorConfig>();
  auto* cmd = app.add_subcommand(
      "collector",
      "Run the collector alone: POST /api/v1/results ingest (durable ack), aggregation,\n"
      "storage with roll-ups, the query API (/api/v1/matrix, series, top, sla), /metrics.");
  cmd->add_option("--listen", cfg->listen, "Address and port to serve HTTP on; port 0 = any")
      ->capture_default_str();
  cmd->add_option("--data-dir", cfg->data_dir,
                  "Directory for the WAL and the SQLite store (created if missing)")
      ->capture_default_str();
  cmd->add_option("--token", cfg->token,
                  "Bearer token agents must send (env PINGMESH_AGENT_TOKEN); without one every\n"
                  "batch is accepted")
      ->envname("PINGMESH_AGENT_TOKEN");
  cmd->add_option("--log-level", cfg->log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  cmd->add_option("--threads", cfg->threads, "HTTP I/O threads")->capture_default_str();
  cmd->add_option("--max-body-bytes", cfg->max_body_bytes, "Larger request bodies get 413")
      ->capture_default_str();
  cmd->add_option("--retention-1m", cfg->retention_minute, "Keep 1-minute tiles this long")
      ->capture_default_str();
  cmd->add_option("--retention-10m", cfg->retention_ten_minutes,
                  "Keep 10-minute tiles this long")
      ->capture_default_str();
  cmd->add_option("--retention-1h", cfg->retention_hour, "Keep 1-hour tiles this long")
      ->capture_default_str();
  cmd->add_option("--retention-1d", cfg->retention_day, "Keep 1-day tiles this long")
      ->capture_default_str();
  cmd->add_option("--grace", cfg->grace_s,
                  "Seconds a 1-minute window keeps accepting late results after it ends")
      ->capture_default_str();
  cmd->add_flag("--no-fsync", cfg->no_fsync,
                "Acknowledge batches without fdatasync (benchmarks; loses data on power failure)");
  cmd->add_option("--config", cfg->config_file,
                  "YAML file with any of these flags as keys (e.g. 'grace: 120'); flags win")
      ->check(CLI::ExistingFile);
  add_remote_write_flags(cmd, &cfg->remote_write);
  cmd->callback([cfg, run, cmd] {
    *run = [cfg, cmd] {
      auto cmdline = given_remote_write_keys(cmd);
      if (!cfg->config_file.empty()) load_yaml_flags(cmd, cfg->config_file);
      collector::RemoteWriteOptions rw;
      finish_remote_write_options(cmd, cfg->remote_write, cmdline, &rw);
      return run_collector(*cfg, rw);
    };
  });
}

}  // namespace pingmesh::cmd
