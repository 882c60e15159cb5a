#include "cmd/commands.hpp"

namespace pingmesh::cmd {

void add_commands(CLI::App& app, std::function<int()>* run) {
  add_server_command(app, run);
  add_ctl_command(app, run);
}

}  // namespace pingmesh::cmd
