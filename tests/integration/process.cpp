#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace pingmesh::testing {

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// argv and envp prepared before fork(): the child may only call async-signal-safe functions.
struct Exec {
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;

  Exec(const std::vector<std::string>& a, const std::map<std::string, std::string>& extra) {
    args.push_back(PINGMESH_BINARY);
    args.insert(args.end(), a.begin(), a.end());
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).starts_with("PINGMESH_")) continue;
      env.emplace_back(*e);
    }
    for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
  }

  /// Forks and execs with stdout/stderr redirected to the given files.
  pid_t spawn(const std::string& out_path, const std::string& err_path) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = out_path == err_path
                  ? out
                  : ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || err < 0) throw std::runtime_error("cannot create " + out_path);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(out, 1);
      ::dup2(err, 2);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out);
    if (err != out) ::close(err);
    if (pid < 0) throw std::runtime_error("fork failed");
    return pid;
  }
};

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("pingmesh-it-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  auto p = path_ / name;
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

RunResult run_pingmesh(const std::vector<std::string>& args, const std::filesystem::path& dir,
                       const std::map<std::string, std::string>& env) {
  static int counter = 0;
  std::string base = (dir / ("run-" + std::to_string(++counter))).string();
  Exec exec(args, env);
  pid_t pid = exec.spawn(base + ".out", base + ".err");
  int status = 0;
  ::waitpid(pid, &status, 0);
  return RunResult{exit_code_of(status), slurp(base + ".out"), slurp(base + ".err")};
}

ServerProcess::ServerProcess(std::filesystem::path dir, std::vector<std::string> args,
                             std::map<std::string, std::string> env)
    : dir_(std::move(dir)), args_(std::move(args)), env_(std::move(env)) {}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) stop();
}

std::string ServerProcess::log() const { return slurp(dir_ / "server.log"); }

bool ServerProcess::start(std::chrono::milliseconds timeout) {
  std::vector<std::string> args{"server", "--listen", "127.0.0.1:0"};
  args.insert(args.end(), args_.begin(), args_.end());
  Exec exec(args, env_);
  std::string log_path = (dir_ / "server.log").string();
  pid_ = exec.spawn(log_path, log_path);
  const std::string marker = "listening on http://127.0.0.1:";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto text = log();
    if (auto at = text.find(marker); at != std::string::npos) {
      port_ = std::stoi(text.substr(at + marker.size()));
      return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int ServerProcess::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return exit_code_of(status);
}

}  // namespace pingmesh::testing
