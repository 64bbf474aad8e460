#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cppconn/resultset.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/migrations/migrations.h"
#include "storage/mysql/mysql_pool.h"
#include "storage/testing/test_database.h"

namespace im::storage::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class MigrationsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TestDatabaseOptions options;
    options.apply_migrations = false;
    db_ = TestDatabase::CreateOrFail(options);
    ASSERT_NE(db_, nullptr);
    pool_ = NewPool();
    ASSERT_NE(pool_, nullptr);
  }

  std::unique_ptr<MysqlPool> NewPool() {
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool =
        MysqlPool::Create(db_->options());
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? *std::move(pool) : nullptr;
  }

  static std::vector<Migration> Set(
      std::vector<std::pair<std::string, std::string>> files) {
    absl::StatusOr<std::vector<Migration>> m = MigrationsFromFiles(files);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : std::vector<Migration>{};
  }

  int64_t Count(const std::string& sql) {
    absl::StatusOr<int64_t> n = pool_->Run<int64_t>(
        "test.count", [&](MysqlConnection& c) -> absl::StatusOr<int64_t> {
          std::unique_ptr<sql::ResultSet> rows(c.Prepare(sql).executeQuery());
          rows->next();
          return rows->getInt64(1);
        });
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : -1;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<MysqlPool> pool_;
};

TEST_F(MigrationsIntegrationTest, EmbeddedSchemaAppliesOnceThenNoOp) {
  absl::StatusOr<MigrationReport> first =
      ApplyMigrations(*pool_, EmbeddedMigrations());
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<int> all;
  for (const Migration& m : EmbeddedMigrations()) all.push_back(m.version);
  EXPECT_EQ(first->applied, all);
  EXPECT_EQ(first->current_version, all.back());
  EXPECT_THAT(first->unknown, IsEmpty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM information_schema.tables WHERE "
                  "table_schema = DATABASE() AND table_name IN ('users', "
                  "'sessions', 'refresh_tokens', 'service_accounts', "
                  "'conversations', 'memberships', 'messages', "
                  "'read_markers')"),
            8);

  absl::StatusOr<MigrationReport> again =
      ApplyMigrations(*pool_, EmbeddedMigrations());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(again->applied, IsEmpty());
  EXPECT_EQ(again->current_version, all.back());
  absl::StatusOr<std::vector<int>> versions = AppliedMigrationVersions(*pool_);
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(*versions, all);
}

TEST_F(MigrationsIntegrationTest, ChangedFileIsRefused) {
  ASSERT_TRUE(ApplyMigrations(*pool_, Set({{"0001_a", "CREATE TABLE a (x INT)"}}))
                  .ok());
  absl::StatusOr<MigrationReport> changed = ApplyMigrations(
      *pool_, Set({{"0001_a", "CREATE TABLE a (x BIGINT)"},
                   {"0002_b", "CREATE TABLE b (x INT)"}}));
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(changed.status().message(), ::testing::HasSubstr("0001_a"));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM information_schema.tables WHERE "
                  "table_schema = DATABASE() AND table_name = 'b'"),
            0);
}

TEST_F(MigrationsIntegrationTest, ConcurrentRunnersApplyOnce) {
  const std::vector<Migration> set =
      Set({{"0001_t", "CREATE TABLE t (x INT PRIMARY KEY)"},
           {"0002_slow", "DO SLEEP(0.3); INSERT INTO t VALUES (1)"},
           {"0003_more", "INSERT INTO t VALUES (2)"}});
  constexpr int kRunners = 3;
  std::vector<std::unique_ptr<MysqlPool>> pools;
  for (int i = 0; i < kRunners; ++i) pools.push_back(NewPool());
  std::vector<absl::StatusOr<MigrationReport>> reports(
      kRunners, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kRunners; ++i) {
    threads.emplace_back(
        [&, i] { reports[i] = ApplyMigrations(*pools[i], set); });
  }
  for (std::thread& t : threads) t.join();
  int appliers = 0;
  for (const auto& r : reports) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->current_version, 3);
    if (!r->applied.empty()) {
      ++appliers;
      EXPECT_THAT(r->applied, ElementsAre(1, 2, 3));
    }
  }
  EXPECT_EQ(appliers, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM t"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM schema_migrations"), 3);
}

TEST_F(MigrationsIntegrationTest, InterruptedMigrationResumes) {
  const std::vector<Migration> set =
      Set({{"0001_three", "CREATE TABLE a (x INT); CREATE TABLE b (x INT); "
                          "CREATE TABLE c (x INT)"}});
  ASSERT_TRUE(ApplyMigrations(*pool_, Set({})).ok());  // creates the table
  // As if a run died after the first statement.
  ASSERT_TRUE(pool_
                  ->Run("test.prepare",
                        [&](MysqlConnection& c) -> absl::Status {
                          c.Execute("CREATE TABLE a (x INT)");
                          sql::PreparedStatement& p = c.Prepare(
                              "INSERT INTO schema_migrations VALUES "
                              "(1, '0001_three', ?, 1, 3, NULL)");
                          p.setString(1, MigrationChecksum(set[0].sql));
                          p.executeUpdate();
                          return absl::OkStatus();
                        })
                  .ok());
  EXPECT_THAT(*AppliedMigrationVersions(*pool_), IsEmpty());
  absl::StatusOr<MigrationReport> report = ApplyMigrations(*pool_, set);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->applied, ElementsAre(1));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM information_schema.tables WHERE "
                  "table_schema = DATABASE() AND table_name IN ('a','b','c')"),
            3);
  EXPECT_THAT(*AppliedMigrationVersions(*pool_), ElementsAre(1));
}

TEST_F(MigrationsIntegrationTest, GapsAndUnknownVersions) {
  ASSERT_TRUE(ApplyMigrations(*pool_, Set({{"0001_a", "CREATE TABLE a (x INT)"},
                                           {"0003_c", "CREATE TABLE c (x INT)"}}))
                  .ok());
  absl::StatusOr<MigrationReport> gap = ApplyMigrations(
      *pool_, Set({{"0001_a", "CREATE TABLE a (x INT)"},
                   {"0002_b", "CREATE TABLE b (x INT)"},
                   {"0003_c", "CREATE TABLE c (x INT)"}}));
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition);

  // An older binary knows only version 1: fine, 3 is reported.
  absl::StatusOr<MigrationReport> older =
      ApplyMigrations(*pool_, Set({{"0001_a", "CREATE TABLE a (x INT)"}}));
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_THAT(older->applied, IsEmpty());
  EXPECT_THAT(older->unknown, ElementsAre(3));
  EXPECT_EQ(older->current_version, 3);
}

TEST_F(MigrationsIntegrationTest, FailingStatementStopsTheRun) {
  absl::StatusOr<MigrationReport> report = ApplyMigrations(
      *pool_, Set({{"0001_ok", "CREATE TABLE a (x INT)"},
                   {"0002_bad", "CREATE TABLE b (x INT); CREATE TABLE a (y INT)"},
                   {"0003_never", "CREATE TABLE c (x INT)"}}));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(*AppliedMigrationVersions(*pool_), ElementsAre(1));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM information_schema.tables WHERE "
                  "table_schema = DATABASE() AND table_name = 'c'"),
            0);
}

TEST(CreateDatabaseTest, IdempotentAndValidated) {
  absl::StatusOr<MysqlOptions> server = TestServerOptions();
  ASSERT_TRUE(server.ok()) << server.status();
  MysqlOptions options = *server;
  options.database = absl::StrCat("imtest_create_", getpid());
  ASSERT_TRUE(CreateDatabaseIfMissing(options).ok());
  EXPECT_TRUE(CreateDatabaseIfMissing(options).ok());
  EXPECT_TRUE(MysqlPool::Create(options).ok());
  EXPECT_TRUE(DropDatabaseIfExists(options).ok());
  EXPECT_TRUE(DropDatabaseIfExists(options).ok());
  options.database = "bad`name";
  EXPECT_EQ(CreateDatabaseIfMissing(options).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace im::storage::testing
