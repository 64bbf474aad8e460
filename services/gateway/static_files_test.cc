#include "services/gateway/static_files.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace im::gateway {
namespace {

namespace fs = std::filesystem;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::path(std::getenv("TEST_TMPDIR")) / "static_files_test";
    fs::remove_all(base_);
    root_ = base_ / "www";
    fs::create_directories(root_ / "assets");
    Write(root_ / "index.html", "<!doctype html>");
    Write(root_ / "assets" / "app.js", "console.log(1)");
    Write(root_ / "assets" / "index.html", "inner");
    Write(root_ / ".env", "secret");
    Write(base_ / "secret.txt", "outside");
    fs::create_symlink(base_ / "secret.txt", root_ / "link.txt");
    absl::StatusOr<std::unique_ptr<StaticFiles>> files =
        StaticFiles::Create(root_.string());
    ASSERT_TRUE(files.ok()) << files.status();
    files_ = std::move(*files);
  }

  static void Write(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  fs::path base_;
  fs::path root_;
  std::unique_ptr<StaticFiles> files_;
};

TEST_F(StaticFilesTest, ServesFilesWithTheirContentTypes) {
  absl::StatusOr<StaticFile> index = files_->Resolve("/");
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->path, fs::canonical(root_ / "index.html"));
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");

  absl::StatusOr<StaticFile> script = files_->Resolve("/assets/app.js?v=3");
  ASSERT_TRUE(script.ok());
  EXPECT_EQ(script->content_type, "text/javascript; charset=utf-8");

  absl::StatusOr<StaticFile> dir_index = files_->Resolve("/assets/");
  ASSERT_TRUE(dir_index.ok());
  EXPECT_EQ(dir_index->path, fs::canonical(root_ / "assets" / "index.html"));

  absl::StatusOr<StaticFile> encoded = files_->Resolve("/assets/%61pp.js");
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->path, fs::canonical(root_ / "assets" / "app.js"));
}

TEST_F(StaticFilesTest, RefusesEverythingOutsideTheRoot) {
  for (const char* target : {
           "/../secret.txt",
           "/assets/../../secret.txt",
           "/%2e%2e/secret.txt",
           "/%2E%2E%2Fsecret.txt",
           "/assets/..%2f..%2fsecret.txt",
           "/..\\secret.txt",
           "/link.txt",  // symlink pointing outside
           "/.env",      // hidden file
           "/missing.js",
           "/%00index.html",
           "/%zz",
           "/%2",
           "relative.html",
           "",
       }) {
    EXPECT_EQ(files_->Resolve(target).status().code(),
              absl::StatusCode::kNotFound)
        << target;
  }
}

TEST_F(StaticFilesTest, CreateFailsForMissingDirectory) {
  EXPECT_EQ(StaticFiles::Create((base_ / "nope").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ContentTypeTest, KnowsTheWebPageTypes) {
  EXPECT_EQ(StaticFiles::ContentTypeFor("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(StaticFiles::ContentTypeFor("a.SVG"), "image/svg+xml");
  EXPECT_EQ(StaticFiles::ContentTypeFor("a.map"), "application/json");
  EXPECT_EQ(StaticFiles::ContentTypeFor("a.bin"), "application/octet-stream");
}

}  // namespace
}  // namespace im::gateway
