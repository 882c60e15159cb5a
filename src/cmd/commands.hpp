#pragma once
/// Registration of the subcommands. Each add_* function adds its subcommand with its flags and,
/// when that subcommand is chosen, sets *run to the function that runs it.

#include <CLI/CLI.hpp>
#include <functional>

namespace pingmesh::cmd {

void add_commands(CLI::App& app, std::function<int()>* run);

void add_server_command(CLI::App& app, std::function<int()>* run);
void add_ctl_command(CLI::App& app, std::function<int()>* run);
void add_agent_command(CLI::App& app, std::function<int()>* run);
void add_collector_command(CLI::App& app, std::function<int()>* run);
void add_simulate_command(CLI::App& app, std::function<int()>* run);

}  // namespace pingmesh::cmd
