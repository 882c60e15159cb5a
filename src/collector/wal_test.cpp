#include "collector/wal.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

namespace pingmesh::collector {
namespace {

namespace fs = std::filesystem;

class WalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pingmesh_wal_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> replay_all(uint64_t* torn = nullptr, WalOptions o = {}) {
    o.dir = dir_.string();
    Wal wal(o);
    std::vector<std::string> out;
    wal.replay([&](const WalRecord& r) { out.emplace_back(r.payload); }, torn);
    return out;
  }
  fs::path dir_;
};

TEST_F(WalTest, ConcurrentAppendsAreAllReplayed) {
  {
    Wal wal({.dir = dir_.string(), .segment_bytes = 4096});
    wal.replay([](const WalRecord&) { FAIL() << "empty log replays nothing"; });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          std::string payload = std::to_string(t) + ":" + std::to_string(i);
          ASSERT_TRUE(wal.append({1000, 60, BodyFormat::kSnappy, payload}));
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_GT(wal.segments(), 1u);  // rotated at 4 KiB
  }
  auto got = replay_all();
  ASSERT_EQ(got.size(), 200u);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 200u);
}

TEST_F(WalTest, RecordsCarryTheirMetadata) {
  {
    Wal wal({.dir = dir_.string()});
    wal.replay([](const WalRecord&) {});
    ASSERT_TRUE(wal.append({123456, 789, BodyFormat::kGzip, "abc"}));
  }
  Wal wal({.dir = dir_.string()});
  int n = 0;
  wal.replay([&](const WalRecord& r) {
    ++n;
    EXPECT_EQ(r.received_us, 123456);
    EXPECT_EQ(r.accept_from_s, 789);
    EXPECT_EQ(r.format, BodyFormat::kGzip);
    EXPECT_EQ(r.payload, "abc");
  });
  EXPECT_EQ(n, 1);
}

TEST_F(WalTest, TornTailIsIgnored) {
  {
    Wal wal({.dir = dir_.string()});
    wal.replay([](const WalRecord&) {});
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(wal.append({1, 0, BodyFormat::kProtobuf, "payload"}));
  }
  // Simulate a crash in the middle of writing the last record.
  fs::path seg;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (fs::file_size(e.path()) > 0) seg = e.path();
  }
  fs::resize_file(seg, fs::file_size(seg) - 3);
  uint64_t torn = 0;
  EXPECT_EQ(replay_all(&torn).size(), 2u);
  EXPECT_EQ(torn, 1u);
  // A later run appends to a new segment and still replays the intact records.
  {
    Wal wal({.dir = dir_.string()});
    wal.replay([](const WalRecord&) {});
    ASSERT_TRUE(wal.append({1, 0, BodyFormat::kProtobuf, "after"}));
  }
  auto got = replay_all();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got.back(), "after");
}

TEST_F(WalTest, CorruptRecordStopsTheSegment) {
  {
    Wal wal({.dir = dir_.string()});
    wal.replay([](const WalRecord&) {});
    ASSERT_TRUE(wal.append({1, 0, BodyFormat::kProtobuf, "first"}));
    ASSERT_TRUE(wal.append({1, 0, BodyFormat::kProtobuf, "second"}));
  }
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (fs::file_size(e.path()) == 0) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-2, std::ios::end);
    f.put('X');
  }
  uint64_t torn = 0;
  auto got = replay_all(&torn);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "first");
  EXPECT_EQ(torn, 1u);
}

TEST_F(WalTest, ReleaseDeletesStoredSegmentsOnly) {
  Wal wal({.dir = dir_.string(), .segment_bytes = 1});  // one record per segment
  wal.replay([](const WalRecord&) {});
  ASSERT_TRUE(wal.append({100'000'000, 0, BodyFormat::kProtobuf, "a"}));  // received at 100 s
  ASSERT_TRUE(wal.append({200'000'000, 0, BodyFormat::kProtobuf, "b"}));  // at 200 s
  ASSERT_TRUE(wal.append({300'000'000, 0, BodyFormat::kProtobuf, "c"}));  // at 300 s
  EXPECT_EQ(wal.segments(), 4u);  // three full ones and the open one
  EXPECT_EQ(wal.release(100), 0u);
  EXPECT_EQ(wal.release(240), 2u);
  EXPECT_EQ(wal.release(1000), 1u);
  EXPECT_EQ(wal.segments(), 1u);  // the open segment stays
}

}  // namespace
}  // namespace pingmesh::collector
