#include "storage/migrations/migrations.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace im::storage {
namespace {

using ::testing::ElementsAre;

TEST(EmbeddedMigrationsTest, AscendingFromOneWithStatements) {
  const std::vector<Migration>& migrations = EmbeddedMigrations();
  ASSERT_FALSE(migrations.empty());
  EXPECT_EQ(migrations[0].version, 1);
  EXPECT_EQ(migrations[0].name, "0001_initial");
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(migrations[i].version, migrations[i - 1].version);
    }
    absl::StatusOr<std::vector<std::string>> statements =
        SplitSqlStatements(migrations[i].sql);
    ASSERT_TRUE(statements.ok()) << migrations[i].name << ": "
                                 << statements.status();
    EXPECT_FALSE(statements->empty()) << migrations[i].name;
  }
  absl::StatusOr<std::vector<std::string>> initial =
      SplitSqlStatements(migrations[0].sql);
  ASSERT_TRUE(initial.ok());
  EXPECT_EQ(initial->size(), 8u);  // one CREATE TABLE per table
}

TEST(SplitSqlStatementsTest, QuotesAndComments) {
  absl::StatusOr<std::vector<std::string>> got = SplitSqlStatements(
      "-- leading comment; not a statement\n"
      "CREATE TABLE a (x INT); # trailing; comment\n"
      "INSERT INTO a VALUES (';'), (\"\\\";\"), ('it''s; fine');\n"
      "/* block; comment */\n"
      "SELECT `we;ird` FROM a  ;;\n"
      "/*!40101 SET @x = 1 */;\n"
      "-- the end;");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got,
              ElementsAre("-- leading comment; not a statement\n"
                          "CREATE TABLE a (x INT)",
                          "# trailing; comment\n"
                          "INSERT INTO a VALUES (';'), (\"\\\";\"), "
                          "('it''s; fine')",
                          "/* block; comment */\nSELECT `we;ird` FROM a",
                          "/*!40101 SET @x = 1 */"));
  // "--" needs a space to start a comment.
  got = SplitSqlStatements("SELECT 1--1; SELECT 2");
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(*got, ElementsAre("SELECT 1--1", "SELECT 2"));
}

TEST(SplitSqlStatementsTest, Unterminated) {
  EXPECT_EQ(SplitSqlStatements("SELECT 'abc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitSqlStatements("SELECT 1 /* never closed").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitSqlStatements("SELECT `x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MigrationsFromFilesTest, ParsesAndSorts) {
  absl::StatusOr<std::vector<Migration>> got = MigrationsFromFiles(
      {{"0002_b", "SELECT 2"}, {"0001_a", "SELECT 1"}, {"0010_c", "SELECT 3"}});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].version, 1);
  EXPECT_EQ((*got)[1].version, 2);
  EXPECT_EQ((*got)[2].version, 10);
  EXPECT_EQ((*got)[2].name, "0010_c");
  EXPECT_EQ(MigrationsFromFiles({{"0001_a", ""}, {"0001_b", ""}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MigrationsFromFiles({{"x_a", ""}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MigrationsFromFiles({{"0000_zero", ""}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MigrationChecksumTest, Sha256Hex) {
  EXPECT_EQ(MigrationChecksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_NE(MigrationChecksum("SELECT 1"), MigrationChecksum("SELECT 1 "));
}

}  // namespace
}  // namespace im::storage
