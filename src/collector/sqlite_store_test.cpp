#include <gtest/gtest.h>

#include <filesystem>

#include "collector/store.hpp"

namespace pingmesh::collector {
namespace {

namespace fs = std::filesystem;

TEST(SqliteStore, WritesReadsScansDeletesAndSurvivesReopen) {
  fs::path dir = fs::temp_directory_path() / ("pingmesh_store_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string path = (dir / "c.db").string();
  {
    auto s = open_sqlite_store(path);
    std::vector<Tile> tiles;
    for (int64_t t = 0; t < 10; ++t) {
      tiles.push_back({{Level::kRackPair, 7, 60, 6000 + t * 60}, "m" + std::to_string(t)});
      tiles.push_back({{Level::kDcPair, 0, 60, 6000 + t * 60}, "d" + std::to_string(t)});
    }
    tiles.push_back({{Level::kRackPair, 7, 600, 6000}, "ten"});
    s->write(tiles, {{NameKind::kDc, 1, "dc1", 0, 0}, {NameKind::kRack, 7, "r7", 1, 1}},
             {{"flushed_until", 6600}});
    // Rewriting a tile replaces it.
    s->write({{{Level::kRackPair, 7, 60, 6000}, "m0b"}}, {}, {});
  }
  auto s = open_sqlite_store(path);
  EXPECT_EQ(*s->meta("flushed_until"), 6600);
  EXPECT_FALSE(s->meta("nothing").has_value());
  auto names = s->names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[1], (NameRow{NameKind::kRack, 7, "r7", 1, 1}));
  std::vector<std::pair<int64_t, std::string>> got;
  s->read(Level::kRackPair, 7, 60, 6060, 6240,
          [&](int64_t t, std::string_view d) { got.emplace_back(t, d); });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], (std::pair<int64_t, std::string>{6060, "m1"}));
  got.clear();
  s->read(Level::kRackPair, 7, 60, 6000, 6060,
          [&](int64_t t, std::string_view d) { got.emplace_back(t, d); });
  EXPECT_EQ(got.at(0).second, "m0b");
  std::vector<TileId> scanned;
  s->scan(60, 6000, 6120, [&](const TileId& id, std::string_view) { scanned.push_back(id); });
  ASSERT_EQ(scanned.size(), 4u);
  EXPECT_EQ(scanned[0].level, Level::kRackPair);  // ordered by level, scope, start
  EXPECT_EQ(scanned[2].level, Level::kDcPair);
  // Retention deletes in bounded batches, one granularity at a time.
  EXPECT_EQ(s->delete_before(60, 6300, 3), 3u);
  EXPECT_EQ(s->delete_before(60, 6300, 100), 7u);
  EXPECT_EQ(s->delete_before(60, 6300, 100), 0u);
  EXPECT_EQ(s->count(60), 10u);
  EXPECT_EQ(s->count(600), 1u);
  s.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pingmesh::collector
