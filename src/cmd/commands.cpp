#include "cmd/commands.hpp"

namespace pingmesh::cmd {

void add_commands(CLI::App& app, std::function<int()>* run) {
  add_server_command(app, run);
  add_ctl_command(app, run);
#ifdef PINGMESH_HAVE_AGENT
  add_agent_command(app, run);
#endif
#ifdef PINGMESH_HAVE_COLLECTOR
  add_collector_command(app, run);
#endif
#ifdef PINGMESH_HAVE_ANALYZE
  add_simulate_command(app, run);
#endif
}

}  // namespace pingmesh::cmd
