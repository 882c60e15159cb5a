#include "common/static_files.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace pingmesh::http;

TEST(StaticFiles, ServesFilesWithTypesEtagsAnd304) {
  auto dir = fs::temp_directory_path() / ("pm-static-" + std::to_string(::getpid()));
  fs::create_directories(dir / "assets");
  std::ofstream(dir / "index.html") << "<html>hi</html>";
  std::ofstream(dir / "assets" / "app-1234.js") << "console.log(1)";
  StaticFiles files(dir.string());
  EXPECT_EQ(files.file_count(), 2u);
  Request q;
  q.method = "GET";
  q.path = "/";
  auto index = files.serve(q);
  ASSERT_TRUE(index);
  EXPECT_EQ(*index->shared_body, "<html>hi</html>");
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  q.path = "/assets/app-1234.js";
  auto js = files.serve(q);
  ASSERT_TRUE(js);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  std::string etag;
  for (const auto& [k, v] : js->headers) {
    if (k == "etag") etag = v;
  }
  ASSERT_FALSE(etag.empty());
  q.headers.emplace_back("if-none-match", etag);
  EXPECT_EQ(files.serve(q)->status, 304);
  q.headers.clear();
  q.path = "/../etc/passwd";
  EXPECT_FALSE(files.serve(q));
  q.path = "/missing.js";
  EXPECT_FALSE(files.serve(q));
  fs::remove_all(dir);
  EXPECT_THROW(StaticFiles(dir.string()), std::runtime_error);
}
