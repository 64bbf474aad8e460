#include "tools/imctl/session_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "gtest/gtest.h"

namespace im::imctl {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp");
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(StateFilesTest, DefaultDirectoryFollowsXdgThenHome) {
  EXPECT_EQ(DefaultStateDirectory("/x", "/home/a"), "/x/imctl");
  EXPECT_EQ(DefaultStateDirectory("", "/home/a"), "/home/a/.config/imctl");
  EXPECT_EQ(DefaultStateDirectory("", ""), "");
}

TEST(StateFilesTest, SessionIsPrivateAndRoundTrips) {
  StateFiles files(TempDir() + "/cfg/nested/imctl");
  EXPECT_EQ(files.LoadSession().status().code(), absl::StatusCode::kNotFound);
  auth::v1::TokenPair tokens;
  tokens.set_user_id(7);
  tokens.set_session_id(9);
  tokens.set_access_token("v1.abc.def");
  tokens.set_refresh_token("imr_secret");
  tokens.mutable_access_expires_at()->set_seconds(1234);
  ASSERT_TRUE(files.SaveSession(tokens).ok());
  EXPECT_EQ(Mode(files.session_path()), 0600u);
  EXPECT_EQ(Mode(files.directory()), 0700u);
  absl::StatusOr<auth::v1::TokenPair> loaded = files.LoadSession();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->refresh_token(), "imr_secret");
  EXPECT_EQ(loaded->access_expires_at().seconds(), 1234);
  ASSERT_TRUE(files.RemoveSession().ok());
  EXPECT_EQ(files.LoadSession().status().code(), absl::StatusCode::kNotFound);
}

TEST(StateFilesTest, DamagedSessionIsReported) {
  StateFiles files(TempDir() + "/damaged");
  ASSERT_TRUE(files.SaveCursors({}).ok());  // creates the directory
  std::ofstream(files.session_path()) << "not a token pair {";
  EXPECT_EQ(files.LoadSession().status().code(), absl::StatusCode::kDataLoss);
}

TEST(StateFilesTest, CursorsRoundTripAndBadLinesFail) {
  StateFiles files(TempDir() + "/cursors");
  EXPECT_TRUE(files.LoadCursors()->empty());
  ASSERT_TRUE(files.SaveCursors({{3, 10}, {1, 2}}).ok());
  absl::StatusOr<absl::flat_hash_map<uint64_t, uint64_t>> cursors =
      files.LoadCursors();
  ASSERT_TRUE(cursors.ok());
  EXPECT_EQ(cursors->size(), 2u);
  EXPECT_EQ(cursors->at(3), 10u);
  std::ofstream(files.cursors_path()) << "1 x\n";
  EXPECT_EQ(files.LoadCursors().status().code(), absl::StatusCode::kDataLoss);
}

TEST(StateFilesTest, LockIsExclusiveAcrossOpenFiles) {
  StateFiles files(TempDir() + "/locked");
  absl::StatusOr<StateFiles::Lock> lock = files.Acquire();
  ASSERT_TRUE(lock.ok());
  // flock conflicts between separate open file descriptions.
  const int fd = open((files.directory() + "/lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_NE(flock(fd, LOCK_EX | LOCK_NB), 0);
  { StateFiles::Lock released = std::move(*lock); }
  EXPECT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  close(fd);
}

}  // namespace
}  // namespace im::imctl
