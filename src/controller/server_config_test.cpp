#include "controller/server_config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace pingmesh::controller {
namespace {

/// Writes `text` to a fresh temporary file and returns its path.
std::string write_temp(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() /
              ("pingmesh-config-" + std::to_string(::getpid()) + "-" +
               std::to_string(std::hash<std::string>{}(text)) + ".yaml");
  std::ofstream(path) << text;
  return path.string();
}

TEST(ServerConfig, ReadsKeysAndLetsFlagsWin) {
  auto path = write_temp(
      "listen: \"[::1]:9100\"\ndb: /tmp/x.db\nadmin_token: s3cret\nthreads: 4\n"
      "min-interval-ms: 1000\nlog-level: debug\ngrace: 15\n");
  ServerConfig c;
  load_server_config(path, &c, {"db"});
  EXPECT_EQ(c.listen, "[::1]:9100");
  EXPECT_EQ(c.db, "./pingmesh.db");  // given as a flag: the file does not override it
  EXPECT_EQ(c.admin_token, "s3cret");
  EXPECT_EQ(c.threads, 4);
  EXPECT_EQ(c.min_interval_ms, 1000u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.grace_s, 15u);
  check_server_config(c);
  std::filesystem::remove(path);
}

TEST(ServerConfig, ErrorsNameFileAndLine) {
  auto expect_error = [](const std::string& text, const std::string& want) {
    auto path = write_temp(text);
    ServerConfig c;
    try {
      load_server_config(path, &c);
      ADD_FAILURE() << "no error for: " << text;
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + ":" + want, 0), 0u) << e.what();
    }
    std::filesystem::remove(path);
  };
  expect_error("db: a.db\nlisten_port: 9000\n", "2: unknown key 'listen_port'");
  expect_error("threads: many\n", "1: threads: must be an integer");
  expect_error("db: a\nthreads: 0\n", "2: threads");
  expect_error("listen: nowhere\n", "1: listen:");
  expect_error("log-level: loud\n", "1: log-level");
  expect_error("db: a\ngrace: 0\n", "2: grace");
  expect_error("db: [a\n", "");
  expect_error("- a\n- b\n", "1: the config file must be a mapping");
  ServerConfig c;
  EXPECT_THROW(load_server_config("/nonexistent/pingmesh.yaml", &c), std::runtime_error);
}

TEST(ServerConfig, ExtraKeysOfLaterStagesWithLines) {
  std::vector<std::pair<std::string, std::string>> got;
  ExtraConfigKeys extra{{"remote-write-url", "remote-write-label"},
                        [&](const std::string& k, const std::string& v) {
                          if (v == "bad") throw std::invalid_argument(k + ": is bad");
                          got.emplace_back(k, v);
                        }};
  auto path = write_temp(
      "db: a.db\nremote_write_url: http://x/api/v1/write\n"
      "remote-write-label: [cluster=a, env=b]\n");
  ServerConfig c;
  load_server_config(path, &c, {}, &extra);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0],
            (std::pair<std::string, std::string>{"remote-write-url", "http://x/api/v1/write"}));
  EXPECT_EQ(got[2].second, "env=b");
  got.clear();
  load_server_config(path, &c, {"remote-write-url"}, &extra);  // given as a flag
  EXPECT_EQ(got.size(), 2u);
  std::filesystem::remove(path);

  path = write_temp("db: a.db\n\nremote-write-url: bad\n");
  try {
    load_server_config(path, &c, {}, &extra);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":3: remote-write-url: is bad");
  }
  std::filesystem::remove(path);
  path = write_temp("remote-write-urls: x\n");
  try {
    load_server_config(path, &c, {}, &extra);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'remote-write-urls'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("remote-write-label)"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(ServerConfig, ParsesListenAddresses) {
  EXPECT_EQ(parse_listen("127.0.0.1:9000").port, 9000);
  EXPECT_EQ(parse_listen("[::1]:0").host, "::1");
  EXPECT_EQ(parse_listen(":9000").host, "127.0.0.1");
  EXPECT_THROW(parse_listen("localhost:9000"), std::invalid_argument);
  EXPECT_THROW(parse_listen("127.0.0.1"), std::invalid_argument);
  EXPECT_THROW(parse_listen("127.0.0.1:70000"), std::invalid_argument);
  EXPECT_THROW(parse_listen("::1:9000"), std::invalid_argument);
}

}  // namespace
}  // namespace pingmesh::controller
