#pragma once
/// Flag helpers shared by subcommands: the collector's remote-write flags (used by `server` and
/// `collector`) and a YAML --config file for commands whose keys are simply their flag names.

#include <CLI/CLI.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "collector/remote_write.hpp"

namespace pingmesh::cmd {

/// Values of the --remote-write-* flags as given (strings; parsed by
/// collector::set_remote_write_option so flags and config files share one parser).
struct RemoteWriteFlags {
  std::map<std::string, std::string> values;  ///< key (flag without dashes) -> value
  std::vector<std::string> labels;            ///< --remote-write-label, repeatable
  bool pairs = false;
};

/// Adds --remote-write-url, -bearer-token, -username, -password, -pairs, -batch-size, -timeout,
/// -queue-samples and -label to `cmd`.
void add_remote_write_flags(CLI::App* cmd, RemoteWriteFlags* flags);
/// The remote-write keys given on the command line.
std::set<std::string> given_remote_write_keys(const CLI::App* cmd);
/// Applies the flags holding values over `options` (which may hold a config file's values), then
/// the environment (PINGMESH_REMOTE_WRITE_BEARER_TOKEN, PINGMESH_REMOTE_WRITE_PASSWORD) for keys
/// not in `cmdline`, and checks the result. Throws std::invalid_argument naming the key.
void finish_remote_write_options(const CLI::App* cmd, const RemoteWriteFlags& flags,
                                 const std::set<std::string>& cmdline,
                                 collector::RemoteWriteOptions* options);

/// Reads a YAML mapping of flag names (without dashes, '_' for '-') to values into the options of
/// `cmd` that were not given on the command line (a sequence gives a repeatable flag several
/// values). Throws std::runtime_error "PATH:LINE: message" for an unknown key, a bad value or a
/// syntax error.
void load_yaml_flags(CLI::App* cmd, const std::string& path);

}  // namespace pingmesh::cmd
