// `pingmesh simulate`: the fault simulator (src/analyze/simulate.hpp) as a what-if tool:
// synthetic probe results of a Clos fabric with injected faults, run through the analyzer,
// reporting precision/recall of the localized component and the time to a firing alert.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "analyze/simulate.hpp"
#include "cmd/commands.hpp"
#include "common/log.hpp"

namespace pingmesh::cmd {

namespace {

struct SimulateFlags {
  analyze::sim::SimOptions options;
  std::string faults;
  std::string json_path;
  bool quiet = false;
  int64_t warmup_s = 60;
  int64_t horizon_s = 45;
};

int run_simulate(SimulateFlags flags) {
  log::init("warn");
  auto& o = flags.options;
  o.warmup_ms = flags.warmup_s * 1000;
  o.horizon_ms = flags.horizon_s * 1000;
  if (!flags.faults.empty()) {
    std::stringstream list(flags.faults);
    std::string item;
    while (std::getline(list, item, ',')) {
      auto kind = analyze::sim::parse_fault_kind(item);
      if (!kind) {
        throw std::runtime_error("--faults: unknown fault kind '" + item +
                                 "' (server_down, tor_down, tor_black_hole, spine_drop, "
                                 "uplink_delay, inter_dc)");
      }
      o.kinds.push_back(*kind);
    }
  }
  auto progress = [&](int done, int total) {
    if (!flags.quiet && (done % 50 == 0 || done == total)) {
      std::cerr << "simulate: " << done << "/" << total << " scenarios\n";
    }
  };
  auto report = analyze::sim::run(o, progress);
  std::cout << analyze::sim::format_report(report, o);
  if (!flags.json_path.empty()) {
    std::ofstream out(flags.json_path);
    if (!out) throw std::runtime_error(flags.json_path + ": cannot write");
    out << analyze::sim::to_json(report).dump(2) << "\n";
  }
  return 0;
}

}  // namespace

void add_simulate_command(CLI::App& app, std::function<int()>* run) {
  auto flags = std::make_shared<SimulateFlags>();
  auto& o = flags->options;
  auto* cmd = app.add_subcommand(
      "simulate",
      "Simulate probe results of a Clos fabric with injected faults (server down, ToR down,\n"
      "ToR black hole, spine random drop, rack uplink delay, inter-DC degradation), run them\n"
      "through the analyzer and report precision/recall of the localized component and the\n"
      "time from fault start to a firing alert (see docs/ANALYZER.md)");
  cmd->add_option("--dcs", o.fabric.dcs, "Datacenters")
      ->capture_default_str()
      ->check(CLI::Range(1, 10));
  cmd->add_option("--racks", o.fabric.racks_per_dc, "Racks (ToRs) per DC")
      ->capture_default_str()
      ->check(CLI::Range(1, 999));
  cmd->add_option("--servers", o.fabric.servers_per_rack, "Servers per rack")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--spines", o.fabric.spines_per_dc, "Spines per DC")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--inter-dc-servers", o.fabric.inter_dc_servers,
                  "Servers per DC taking part in inter-DC probing")
      ->capture_default_str();
  cmd->add_option("--scenarios", o.scenarios, "Fault scenarios")->capture_default_str();
  cmd->add_option("--double", o.double_fraction, "Share of scenarios with two faults")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--no-fault", o.no_fault_scenarios, "Extra scenarios without a fault")
      ->capture_default_str();
  cmd->add_option("--faults", flags->faults,
                  "Comma-separated fault kinds to draw from (default: all)");
  cmd->add_option("--seed", o.seed, "Random seed")->capture_default_str();
  cmd->add_option("--threads", o.threads, "Worker threads")->capture_default_str();
  cmd->add_option("--warmup", flags->warmup_s, "Healthy seconds before faults")
      ->capture_default_str();
  cmd->add_option("--horizon", flags->horizon_s, "Seconds simulated after a fault starts")
      ->capture_default_str();
  cmd->add_flag("--with-collector", o.with_collector,
                "Also feed every batch to the collector's aggregator (slower)");
  cmd->add_flag("!--no-traces", o.traces,
                "Do not simulate the analyzer's traceroute rounds (spine drops then stop at "
                "the spine layer)");
  cmd->add_option("--json", flags->json_path, "Write the report as JSON to this file");
  cmd->add_flag("--quiet", flags->quiet, "No progress on stderr");
  cmd->callback([run, flags] { *run = [flags] { return run_simulate(*flags); }; });
}

}  // namespace pingmesh::cmd
