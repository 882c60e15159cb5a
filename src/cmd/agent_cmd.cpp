// `pingmesh agent`: flags and config file -> agent::AgentConfig -> agent::Agent. Wiring only.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <memory>
#include <stdexcept>

#include "agent/agent.hpp"
#include "agent/config.hpp"
#include "cmd/commands.hpp"
#include "common/log.hpp"

namespace pingmesh::cmd {

namespace {

/// Applies a YAML config file to the subcommand's options that the command line did not set
/// (CLI11 2.1 reads config files only for the top-level app, so the agent does it itself).
void apply_config_file(CLI::App* sub, const std::string& path, agent::AgentConfig* c) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read config file " + path);
  for (auto& [name, values] : agent::read_yaml_options(in)) {
    if (name == "config") continue;
    CLI::Option* op = sub->get_option_no_throw("--" + name);
    if (op == nullptr) {
      throw std::runtime_error("config file " + path + ": unknown setting '" + name +
                               "' (see pingmesh agent --help)");
    }
    if (op->count() > 0) continue;  // the command line wins
    if (name == "keep-capabilities") {
      c->drop_privileges = !(values.size() == 1 && (values[0] == "true" || values[0] == "1"));
      continue;
    }
    try {
      op->add_result(values);
      op->run_callback();
    } catch (const CLI::Error& e) {
      throw std::runtime_error("config file " + path + ": '" + name + "': " + e.what());
    }
  }
}

int run_agent(agent::AgentConfig config) {
  log::init(config.log_level);
  // Block the stop signals before any thread exists; this thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  agent::Agent a(std::move(config));
  a.start();
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("agent: signal {}, stopping", sig);
  a.stop();
  return 0;
}

}  // namespace

void add_agent_command(CLI::App& app, std::function<int()>* run) {
  auto config = std::make_shared<agent::AgentConfig>();
  agent::AgentConfig& c = *config;
  CLI::App* sub = app.add_subcommand(
      "agent",
      "Run the agent on a server: pull the pinglist from the controller, probe its peers over "
      "TCP/UDP/ICMP/HTTP from one event loop, answer their probes, upload results to the "
      "collector. Needs root or CAP_NET_RAW for ICMP (capabilities are dropped once the "
      "sockets are open).");
  auto config_file = std::make_shared<std::string>();
  sub->add_option("--config", *config_file,
                  "YAML file of settings; keys are the long flag names below (e.g. "
                  "'max-rate: 500', 'listen-address: [127.0.0.2]'); flags win over the file");
  sub->add_option("--server", c.server_url, "Controller base URL (heartbeat, pinglist)")
      ->capture_default_str();
  sub->add_option("--collector", c.collector_url,
                  "Collector base URL for POST /api/v1/results (default: --server)");
  sub->add_option("--token", c.token, "Bearer token of the agent role")
      ->envname("PINGMESH_AGENT_TOKEN");
  sub->add_option("--name", c.name,
                  "This server's name, as the controller knows it (default: the hostname)");
  sub->add_option("--address", c.addresses,
                  "Address to report in heartbeats (repeatable; default: the host's "
                  "non-loopback interface addresses)");
  sub->add_option("--dc", c.dc, "Datacenter hint sent with heartbeats");
  sub->add_option("--listen-address", c.listen_addresses,
                  "Address the responders bind, and probes leave from (repeatable; default: "
                  "all). Several agents on one host use distinct 127.x.y.z addresses");
  sub->add_option("--tcp-port", c.tcp_port, "TCP echo responder port (0 = ephemeral)")
      ->capture_default_str();
  sub->add_option("--udp-port", c.udp_port, "UDP echo responder port (0 = ephemeral)")
      ->capture_default_str();
  sub->add_option("--http-port", c.http_port, "HTTP port: /ping?size=N, /metrics, /healthz")
      ->capture_default_str();
  sub->add_option("--max-rate", c.max_rate, "Cap on probes per second over all peers")
      ->capture_default_str();
  sub->add_option("--max-inflight", c.max_inflight, "Cap on probes in flight at once")
      ->capture_default_str();
  sub->add_option("--probe-timeout-ms", c.probe_timeout_ms,
                  "Per-probe timeout; the default leaves room for two SYN retransmissions")
      ->capture_default_str();
  sub->add_option("--slot-ms", c.slot_ms,
                  "Timer slot: probes due in one slot fire on one wake-up (1..100)")
      ->capture_default_str();
  sub->add_option("--buffer-results", c.buffer_results,
                  "Results held for upload; when full the oldest are dropped and counted")
      ->capture_default_str();
  sub->add_option("--batch-size", c.batch_size, "Results per upload batch")->capture_default_str();
  sub->add_option("--batch-interval-ms", c.batch_interval_ms,
                  "Upload a partial batch after this long")
      ->capture_default_str();
  sub->add_option("--upload-attempts", c.upload_attempts,
                  "Attempts per batch (429/5xx/transport errors) before it is dropped")
      ->capture_default_str();
  sub->add_option("--upload-backoff-ms", c.upload_backoff_ms,
                  "First retry delay; doubles per attempt, with jitter")
      ->capture_default_str();
  sub->add_option("--upload-backoff-max-ms", c.upload_backoff_max_ms, "Largest retry delay")
      ->capture_default_str();
  sub->add_option("--heartbeat-interval-ms", c.heartbeat_interval_ms, "Heartbeat period")
      ->capture_default_str();
  sub->add_option("--pull-interval-ms", c.pull_interval_ms, "Pinglist pull period")
      ->capture_default_str();
  sub->add_option("--trace-interval-ms", c.trace_interval_ms,
                  "Poll the server for traceroute requests this often (0 = tracer off)")
      ->capture_default_str();
  sub->add_option("--trace-max-rate", c.trace_max_rate,
                  "Traceroute probes per second (TCP connects from fixed source ports)")
      ->capture_default_str();
  sub->add_option("--max-failed-pulls", c.max_failed_pulls,
                  "Consecutive failed pulls after which probing stops (responders go on)")
      ->capture_default_str();
  sub->add_option("--responder-max-connections", c.responder_max_connections,
                  "Open connections the TCP and HTTP responders accept")
      ->capture_default_str();
  sub->add_option("--responder-idle-timeout-ms", c.responder_idle_timeout_ms,
                  "Idle responder connections are closed after this long")
      ->capture_default_str();
  sub->add_option("--lab-min-interval-ms", c.lab_min_interval_ms,
                  "LAB ONLY: allow probe intervals down to this (the floor is otherwise 10 s "
                  "per pair)");
  sub->add_option("--result-log", c.result_log,
                  "Also write every result to this file as JSON lines");
  sub->add_option("--result-log-max-bytes", c.result_log_max_bytes,
                  "Rotate the result log to FILE.1 above this size")
      ->capture_default_str();
  sub->add_option("--log-level", c.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  sub->add_flag("!--keep-capabilities", c.drop_privileges,
                "Do not drop capabilities after opening the sockets");
  sub->callback([run, config, config_file, sub] {
    // Errors in the file are thrown from run(), where main reports them once.
    *run = [config, config_file, sub] {
      if (!config_file->empty()) apply_config_file(sub, *config_file, config.get());
      return run_agent(*config);
    };
  });
}

}  // namespace pingmesh::cmd
