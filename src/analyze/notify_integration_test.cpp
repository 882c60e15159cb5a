// A real webhook receiver (http::Server on loopback) and a real Prometheus Alertmanager
// (Debian's prometheus-alertmanager, started here on 127.0.0.1) receive, then resolve, an alert
// driven by result batches through Analyzer::observe().
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "analyze/analyzer.hpp"
#include "analyze/test_util.hpp"

namespace pingmesh::analyze {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string find_alertmanager() {
  for (const char* p : {"/usr/bin/prometheus-alertmanager", "/usr/local/bin/alertmanager",
                        "/usr/bin/alertmanager"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return {};
}

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

/// Alertmanager in a temp directory; killed (SIGTERM) by the destructor.
class AlertmanagerProcess {
 public:
  explicit AlertmanagerProcess(const std::string& binary) {
    dir_ = std::filesystem::temp_directory_path() / ("pm-am-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_ / "data");
    std::ofstream(dir_ / "am.yml") << "route:\n  receiver: blackhole\n  group_wait: 1s\n"
                                      "receivers:\n  - name: blackhole\n";
    port_ = free_port();
    std::string config = "--config.file=" + (dir_ / "am.yml").string();
    std::string storage = "--storage.path=" + (dir_ / "data").string();
    std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
    pid_ = fork();
    if (pid_ == 0) {
      std::freopen((dir_ / "am.log").c_str(), "w", stderr);
      execl(binary.c_str(), binary.c_str(), config.c_str(), storage.c_str(), listen.c_str(),
            "--cluster.listen-address=", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~AlertmanagerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// Waits for /-/ready.
  bool ready() {
    http::Client client;
    for (int i = 0; i < 100; ++i) {
      auto r = client.perform({"GET", url() + "/-/ready", {}, {}, 1000ms});
      if (r.status == 200) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  std::string log() const {
    std::ifstream in(dir_ / "am.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

/// Collects webhook bodies.
struct Receiver {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<json> bodies;
  int failures_left = 1;  ///< the first delivery is refused (503) to exercise the retry

  http::Response handle(const http::Request& r) {
    std::lock_guard lock(mu);
    if (failures_left > 0) {
      --failures_left;
      return http::Response::error(503, "try again");
    }
    bodies.push_back(json::parse(r.body));
    cv.notify_all();
    return http::Response::json("{}");
  }
  /// Waits until a body has an alert with this alertname and status.
  bool wait_for(const std::string& alertname, const std::string& status) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 15s, [&] {
      for (const auto& b : bodies) {
        for (const auto& a : b["alerts"]) {
          if (a["labels"]["alertname"] == alertname && a["status"] == status) return true;
        }
      }
      return false;
    });
  }
};

/// The alert's state in Alertmanager: "active", "suppressed", "" when absent (or resolved).
std::string am_state(const std::string& url, const std::string& alertname) {
  http::Client client;
  auto r = client.perform({"GET", url + "/api/v2/alerts", {}, {}, 2000ms});
  if (r.status != 200) return "error " + std::to_string(r.status);
  for (const auto& a : json::parse(r.body)) {
    if (a["labels"].value("alertname", "") == alertname) return a["status"]["state"];
  }
  return "";
}

TEST(NotifyIntegration, WebhookAndAlertmanagerReceiveThenResolve) {
  auto binary = find_alertmanager();
  if (binary.empty()) {
    GTEST_SKIP()
        << "prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)";
  }
  AlertmanagerProcess am(binary);
  ASSERT_TRUE(am.ready()) << am.log();

  Receiver receiver;
  http::ServerOptions so;
  so.address = "127.0.0.1";
  so.port = 0;
  http::Server server(so, [&](const http::Request& r) { return receiver.handle(r); });
  server.start();

  AnalyzerOptions options;
  options.notify.webhooks = {"http://127.0.0.1:" + std::to_string(server.port()) + "/hook"};
  options.notify.alertmanagers = {am.url()};
  options.notify.backoff_ms = 100;
  options.notify.resend_ms = 600000;
  options.notify.external_url = "http://127.0.0.1:9000";
  metrics::Registry registry;
  Analyzer analyzer(options, &registry, nullptr);
  analyzer.start();

  // Simulated time that ends in the past of the wall clock, so Alertmanager sees the resolved
  // alert's endsAt behind it, while the firing alert's endsAt (fired + 3 resends) is ahead.
  int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() -
               300000;
  testing::MiniNet net;
  auto step = [&](int64_t t) {
    net.send(t, [&](const v1::ResultBatch& b) { analyzer.observe(b, t0 + t); });
    analyzer.evaluate(t0 + t);
  };
  for (int64_t t = 5000; t <= 60000; t += 5000) step(t);
  net.silent = [](const testing::Node& n) { return n.dc == 1 && n.rack == 3; };  // ToR down
  for (int64_t t = 65000; t <= 90000; t += 5000) step(t);

  ASSERT_TRUE(receiver.wait_for("RackDown", "firing"));
  std::string state;
  for (int i = 0; i < 100 && state != "active"; ++i) {
    state = am_state(am.url(), "RackDown");
    if (state != "active") std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(state, "active") << am.log();

  net.silent = nullptr;  // the ToR is back
  for (int64_t t = 95000; t <= 160000; t += 5000) step(t);
  ASSERT_TRUE(receiver.wait_for("RackDown", "resolved"));
  for (int i = 0; i < 100 && !state.empty(); ++i) {
    state = am_state(am.url(), "RackDown");
    if (!state.empty()) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(state, "") << "Alertmanager still lists the alert";
  EXPECT_GE(analyzer.notify_stats().retried, 1u);  // the refused first delivery
  EXPECT_EQ(analyzer.notify_stats().dropped, 0u);
  analyzer.stop();
  server.stop();
}

/// After a restart, the firing alerts restored from the history file are re-sent to Alertmanager
/// with the periodic re-sends (it would expire them otherwise), and not notified again to the
/// webhook. Both receivers are http::Servers on loopback.
TEST(NotifyIntegration, RestoredAlertsAreResentToAlertmanagerOnly) {
  auto dir = std::filesystem::temp_directory_path() / ("pm-restore-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  AnalyzerOptions options;
  options.history_path = (dir / "analyzer.db").string();
  metrics::Registry registry;
  {
    Analyzer analyzer(options, &registry, nullptr);
    testing::MiniNet net;
    int64_t t0 = 1'700'000'000'000;
    auto step = [&](int64_t t) {
      net.send(t, [&](const v1::ResultBatch& b) { analyzer.observe(b, t0 + t); });
      analyzer.evaluate(t0 + t);
    };
    for (int64_t t = 5000; t <= 60000; t += 5000) step(t);
    net.silent = [](const testing::Node& n) { return n.dc == 1 && n.rack == 3; };
    for (int64_t t = 65000; t <= 90000; t += 5000) step(t);
    auto firing = analyzer.alerts(AlertState::kFiring, true);
    ASSERT_TRUE(std::any_of(firing.begin(), firing.end(),
                            [](const Alert& a) { return a.labels.at("alertname") == "RackDown"; }));
    analyzer.stop();
  }

  Receiver hook, am;
  hook.failures_left = am.failures_left = 0;
  std::vector<std::string> am_paths;
  http::ServerOptions so;
  so.address = "127.0.0.1";
  so.port = 0;
  http::Server hook_server(so, [&](const http::Request& r) { return hook.handle(r); });
  http::Server am_server(so, [&](const http::Request& r) {
    {
      std::lock_guard lock(am.mu);
      am_paths.push_back(r.path);
    }
    // Alertmanager's body is a bare array: wrap it like a webhook body for wait_for().
    http::Request wrapped = r;
    auto alerts = json::parse(r.body);
    for (auto& a : alerts) a["status"] = "firing";
    wrapped.body = json{{"alerts", alerts}}.dump();
    return am.handle(wrapped);
  });
  hook_server.start();
  am_server.start();
  options.notify.webhooks = {"http://127.0.0.1:" + std::to_string(hook_server.port()) + "/hook"};
  options.notify.alertmanagers = {"http://127.0.0.1:" + std::to_string(am_server.port())};
  options.notify.resend_ms = 300;
  Analyzer restarted(options, &registry, nullptr);
  restarted.start();
  ASSERT_TRUE(am.wait_for("RackDown", "firing"));
  {
    std::lock_guard lock(am.mu);
    EXPECT_EQ(am_paths.at(0), "/api/v2/alerts");
    auto ends = am.bodies.at(0)["alerts"][0]["endsAt"].get<std::string>();
    EXPECT_GT(ends, format_rfc3339(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count()));  // still firing as far as it knows
  }
  std::this_thread::sleep_for(700ms);  // two more re-sends
  restarted.stop();
  hook_server.stop();
  am_server.stop();
  {
    std::lock_guard lock(hook.mu);
    EXPECT_TRUE(hook.bodies.empty()) << hook.bodies.size() << " webhook deliveries";
  }
  std::lock_guard lock(am.mu);
  EXPECT_GE(am.bodies.size(), 2u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pingmesh::analyze
