// pingmesh: one binary, one subcommand per role. This file only wires; each role lives in its
// stage library and registers its flags in its own *_cmd.cpp beside this file.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cmd/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "pingmesh - data-centre network latency and loss, measured by every server\n"
      "(after Microsoft's Pingmesh, SIGCOMM 2015). Run 'pingmesh <command> --help'.",
      "pingmesh"};
  app.set_version_flag("--version", PINGMESH_VERSION);
  app.require_subcommand(1);
  std::function<int()> run;
  pingmesh::cmd::add_commands(app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run ? run() : 0;
  } catch (const std::exception& e) {
    std::cerr << "pingmesh: " << e.what() << "\n";
    return 1;
  }
}
