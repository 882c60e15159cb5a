#pragma once
/// Helpers of the integration tests: a temporary directory, the real `pingmesh server` as a child
/// process on an ephemeral port, and one-shot runs of `pingmesh ctl`.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace pingmesh::testing {

/// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// Writes `text` to `name` inside the directory and returns its path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

/// Output of a finished child process.
struct RunResult {
  int exit_code = -1;  ///< exit status, or 128 + signal
  std::string out;     ///< stdout
  std::string err;     ///< stderr
};

/// Runs the pingmesh binary with `args` to completion (environment: the test's, without
/// PINGMESH_* variables, plus `env`).
RunResult run_pingmesh(const std::vector<std::string>& args, const std::filesystem::path& dir,
                       const std::map<std::string, std::string>& env = {});

/// `pingmesh server` as a child process listening on 127.0.0.1:0; the bound port is read from
/// its log ("listening on http://127.0.0.1:PORT").
class ServerProcess {
 public:
  /// `args` come after "server --listen 127.0.0.1:0"; the log goes to dir/server.log.
  ServerProcess(std::filesystem::path dir, std::vector<std::string> args,
                std::map<std::string, std::string> env = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  /// Starts the process and waits until it listens. Returns false (log in `log()`) when it
  /// exits or does not listen within the timeout.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  /// Sends SIGTERM and waits; returns the exit code (128 + signal when killed).
  int stop();
  /// Base URL, e.g. http://127.0.0.1:41234
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const;

 private:
  std::filesystem::path dir_;
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace pingmesh::testing
