// kill -9 of a `pingmesh collector` process mid-stream loses no acknowledged result: a client
// streams batches, the collector is SIGKILLed while batches are in flight, a new process on the
// same data directory replays its WAL, and the probe count it reports covers every 200 received.
#include <gtest/gtest.h>
#include <signal.h>
#include <snappy.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/http.hpp"
#include "pingmesh.pb.h"

namespace {

namespace fs = std::filesystem;

struct Child {
  pid_t pid = -1;
  uint16_t port = 0;
};

/// Starts `pingmesh collector` and waits for its "listening on" log line to learn the port.
Child start_collector(const fs::path& dir) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::execl(PINGMESH_BINARY, PINGMESH_BINARY, "collector", "--listen", "127.0.0.1:0",
            "--data-dir", dir.c_str(), "--token", "t", "--log-level", "info", nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  Child c{pid, 0};
  FILE* out = ::fdopen(fds[0], "r");
  char line[4096];
  while (std::fgets(line, sizeof line, out)) {
    std::string s(line);
    auto at = s.find("listening on 127.0.0.1:");
    if (at != std::string::npos) {
      c.port = static_cast<uint16_t>(std::stoi(s.substr(at + 23)));
      break;
    }
  }
  // Keep draining the child's output so it never blocks on a full pipe.
  std::thread([out] {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, out)) {
    }
    std::fclose(out);
  }).detach();
  return c;
}

std::string batch_body(uint64_t id, int results) {
  pingmesh::v1::ResultBatch b;
  b.set_agent("a1");
  b.set_dc("dc1");
  b.set_rack("r1");
  b.set_batch_id(id);
  auto* p = b.add_peers();
  p->set_name("a2");
  p->set_dc("dc1");
  p->set_rack("r1");
  auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  for (int i = 0; i < results; ++i) {
    auto* r = b.add_results();
    r->set_peer(0);
    r->set_timestamp_us(now_us);
    r->set_protocol(pingmesh::v1::TCP);
    r->set_outcome(pingmesh::v1::OK);
    r->set_rtt_us(150);
  }
  std::string raw = b.SerializeAsString(), z;
  snappy::Compress(raw.data(), raw.size(), &z);
  return z;
}

TEST(CollectorProcess, KillNineLosesNoAcknowledgedResult) {
  fs::path dir = fs::temp_directory_path() / ("pingmesh_crash_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  Child c = start_collector(dir);
  ASSERT_GT(c.port, 0) << "the collector did not start";
  constexpr int kPerBatch = 100;
  std::atomic<int64_t> acked{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t) {
    senders.emplace_back([&, t] {
      pingmesh::http::Client client;
      pingmesh::http::ClientRequest req;
      req.method = "POST";
      req.url = "http://127.0.0.1:" + std::to_string(c.port) + "/api/v1/results";
      req.headers = {{"Content-Type", "application/x-protobuf"},
                     {"Content-Encoding", "snappy"},
                     {"Authorization", "Bearer t"}};
      for (uint64_t i = 1; !stop; ++i) {
        req.body = batch_body(static_cast<uint64_t>(t) << 32 | i, kPerBatch);
        auto r = client.perform(req);
        if (r.status == 200) {
          acked += kPerBatch;
        } else if (r.status == 0) {
          return;  // the collector is gone
        }
      }
    });
  }
  while (acked < 200 * kPerBatch) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(c.pid, SIGKILL);  // batches are in flight in all three senders
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  stop = true;
  for (auto& s : senders) s.join();
  ASSERT_TRUE(WIFSIGNALED(status));

  Child d = start_collector(dir);
  ASSERT_GT(d.port, 0) << "the collector did not restart";
  pingmesh::http::Client client;
  pingmesh::http::ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(d.port) +
            "/api/v1/matrix?level=dc&metric=probes&from=" +
            std::to_string(std::time(nullptr) - 600) + "&to=" + std::to_string(std::time(nullptr) + 60);
  auto r = client.perform(req);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  int64_t probes = j["cells"][0][0]["value"].get<int64_t>();
  EXPECT_GE(probes, acked.load());                   // nothing acknowledged is lost
  EXPECT_LE(probes, acked.load() + 3 * kPerBatch);  // at most the batches in flight at the kill
  ::kill(d.pid, SIGTERM);
  ::waitpid(d.pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  fs::remove_all(dir);
}

}  // namespace
