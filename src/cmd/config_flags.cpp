#include "cmd/config_flags.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pingmesh::cmd {

void add_remote_write_flags(CLI::App* cmd, RemoteWriteFlags* f) {
  auto opt = [&](const std::string& key, const std::string& help) {
    cmd->add_option_function<std::string>(
           "--" + key, [f, key](const std::string& v) { f->values[key] = v; }, help)
        ->group("Remote write (Prometheus)");
  };
  opt("remote-write-url",
      "Prometheus remote-write endpoint receiving DC-pair and rack-pair series when each 1-minute\n"
      "window closes, e.g. http://vm:8428/api/v1/write (see docs/COLLECTOR.md, Export)");
  opt("remote-write-bearer-token",
      "Bearer token sent to the remote-write endpoint (env PINGMESH_REMOTE_WRITE_BEARER_TOKEN)");
  opt("remote-write-username", "Basic-auth user for the remote-write endpoint");
  opt("remote-write-password",
      "Basic-auth password for the remote-write endpoint (env PINGMESH_REMOTE_WRITE_PASSWORD)");
  cmd->add_flag("--remote-write-pairs", f->pairs,
                "Also export server-pair series: n² cardinality, see docs/COLLECTOR.md")
      ->group("Remote write (Prometheus)");
  opt("remote-write-batch-size", "Samples per remote-write request (default 5000)");
  opt("remote-write-timeout", "Timeout of one remote-write request: 500ms, 10s, 1m (default 10s)");
  opt("remote-write-queue-samples",
      "Samples held while the receiver is slow or down; beyond, the oldest are dropped and\n"
      "counted (default 2000000)");
  cmd->add_option("--remote-write-label", f->labels,
                  "name=value label added to every exported series (repeatable), e.g. cluster=eu1")
      ->group("Remote write (Prometheus)");
}

std::set<std::string> given_remote_write_keys(const CLI::App* cmd) {
  std::set<std::string> out;
  for (const auto& key : collector::remote_write_keys()) {
    if (cmd->count("--" + key) > 0) out.insert(key);
  }
  return out;
}

void finish_remote_write_options(const CLI::App* cmd, const RemoteWriteFlags& f,
                                 const std::set<std::string>& cmdline,
                                 collector::RemoteWriteOptions* o) {
  for (const auto& [key, value] : f.values) collector::set_remote_write_option(o, key, value);
  if (cmd->count("--remote-write-pairs") > 0) o->pairs = f.pairs;
  if (!f.labels.empty()) {
    o->external_labels.clear();  // flags replace the file's labels
    for (const auto& l : f.labels) collector::set_remote_write_option(o, "remote-write-label", l);
  }
  auto env = [&](const char* name, const char* key) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0' && !cmdline.contains(key)) {
      collector::set_remote_write_option(o, key, v);
    }
  };
  env("PINGMESH_REMOTE_WRITE_BEARER_TOKEN", "remote-write-bearer-token");
  env("PINGMESH_REMOTE_WRITE_PASSWORD", "remote-write-password");
  collector::check_remote_write_options(*o);
}

namespace {
std::runtime_error at(const std::string& path, const YAML::Mark& mark, const std::string& msg) {
  return std::runtime_error(path + ":" + std::to_string(mark.line + 1) + ": " + msg);
}
}  // namespace

void load_yaml_flags(CLI::App* cmd, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the config file");
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    throw at(path, e.mark, e.msg);
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw at(path, root.Mark(), "the config file must be a mapping of keys");
  std::set<std::string> given;
  for (const CLI::Option* o : cmd->get_options()) {
    if (o->count() > 0) given.insert(o->get_name());
  }
  for (const auto& kv : root) {
    std::string key = kv.first.Scalar();
    for (auto& c : key) {
      if (c == '_') c = '-';
    }
    CLI::Option* opt =
        key == "config" || key == "help" ? nullptr : cmd->get_option_no_throw("--" + key);
    if (opt == nullptr) {
      std::string known;
      for (const CLI::Option* o : cmd->get_options()) {
        std::string n = o->get_name();
        if (!n.starts_with("--") || n == "--help" || n == "--config") continue;
        known += (known.empty() ? "" : ", ") + n.substr(2);
      }
      throw at(path, kv.first.Mark(),
               "unknown key '" + kv.first.Scalar() + "' (known: " + known + ")");
    }
    if (given.contains(opt->get_name())) continue;  // the command line wins
    const YAML::Node& v = kv.second;
    std::vector<std::string> values;
    if (v.IsSequence()) {
      for (const auto& item : v) {
        if (!item.IsScalar()) throw at(path, item.Mark(), key + ": must be a single value");
        values.push_back(item.Scalar());
      }
    } else if (v.IsScalar()) {
      values.push_back(v.Scalar());
    } else {
      throw at(path, v.Mark(), key + ": must be a single value or a list");
    }
    if (values.size() > 1 && opt->get_items_expected_max() <= 1) {
      throw at(path, v.Mark(), key + ": takes a single value");
    }
    try {
      for (auto& s : values) {
        // Remote-write values are checked here too, so their errors carry the line.
        collector::RemoteWriteOptions scratch;
        if (key.starts_with("remote-write-")) collector::set_remote_write_option(&scratch, key, s);
        opt->add_result(s);
      }
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw at(path, v.Mark(), key + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      throw at(path, v.Mark(), e.what());
    }
  }
}

}  // namespace pingmesh::cmd
