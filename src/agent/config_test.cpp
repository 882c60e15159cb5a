#include "agent/config.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "agent/result_log.hpp"

namespace pingmesh::agent {
namespace {

TEST(Config, ReadsYamlOptions) {
  std::istringstream in(
      "server: http://10.0.0.1:9000\n"
      "max_rate: 500\n"
      "listen-address: [127.0.0.2, '::1']\n"
      "dc:\n");
  auto opts = read_yaml_options(in);
  ASSERT_EQ(opts.size(), 4u);
  EXPECT_EQ(opts[0].first, "server");
  EXPECT_EQ(opts[1].first, "max-rate");
  EXPECT_EQ(opts[1].second, std::vector<std::string>{"500"});
  EXPECT_EQ(opts[2].second.size(), 2u);
  EXPECT_TRUE(opts[3].second.empty());
}

TEST(Config, RejectsNonMappings) {
  std::istringstream list("- a\n- b\n");
  EXPECT_THROW(read_yaml_options(list), std::runtime_error);
  std::istringstream nested("limits: {rate: 1}\n");
  EXPECT_THROW(read_yaml_options(nested), std::runtime_error);
  std::istringstream bad("a: [\n");
  EXPECT_THROW(read_yaml_options(bad), std::runtime_error);
}

TEST(Config, InterfaceAddressesSkipLoopback) {
  for (const auto& a : interface_addresses()) {
    EXPECT_NE(a.rfind("127.", 0), 0u) << a;
    EXPECT_NE(a, "::1");
  }
}

TEST(ResultLog, RotatesAtItsCap) {
  std::string path = ::testing::TempDir() + "/agent_result_log_test.jsonl";
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
  {
    ResultLog log(path, 4096);
    std::vector<ProbeResult> rs(100);
    for (auto& r : rs) r.peer = std::make_shared<PeerLabels>(PeerLabels{"p", "10.0.0.1", "d", "r"});
    log.write(rs);
    EXPECT_EQ(log.write_errors(), 0u);
  }
  std::FILE* f = std::fopen((path + ".1").c_str(), "r");
  ASSERT_NE(f, nullptr) << "rotated file exists";
  std::fclose(f);
  f = std::fopen(path.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::fseek(f, 0, SEEK_END);
  EXPECT_LE(std::ftell(f), 4096);
  std::fclose(f);
  ProbeResult r;
  r.outcome = Outcome::kTimeout;
  EXPECT_NE(ResultLog::to_json_line(r).find("\"outcome\":\"timeout\""), std::string::npos);
}

}  // namespace
}  // namespace pingmesh::agent
