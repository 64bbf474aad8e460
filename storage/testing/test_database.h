#ifndef IM_STORAGE_TESTING_TEST_DATABASE_H_
#define IM_STORAGE_TESTING_TEST_DATABASE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/mysql/mysql_options.h"

// A fresh, uniquely named database on the test MySQL server, migrated to
// the embedded schema and dropped when the TestDatabase is destroyed.
//
// The server comes from the environment (bazel test --test_env=...):
//   IM_TEST_MYSQL_HOST, IM_TEST_MYSQL_PORT, IM_TEST_MYSQL_USER,
//   IM_TEST_MYSQL_PASSWORD
// Tests that need it are tagged "mysql"; without the variables they fail
// with a message saying how to run them (they never skip silently).

namespace im::storage::testing {

// The test server without a database (pool_size small); FAILED_PRECONDITION
// naming the missing variables.
absl::StatusOr<MysqlOptions> TestServerOptions();

struct TestDatabaseOptions {
  bool apply_migrations = true;
  int pool_size = 8;
};

class TestDatabase {
 public:
  static absl::StatusOr<std::unique_ptr<TestDatabase>> Create(
      const TestDatabaseOptions& options = {});
  // Create(), or nullptr after failing the current gtest test with the
  // reason (use as: auto db = TestDatabase::CreateOrFail(); ASSERT_NE(...)).
  static std::unique_ptr<TestDatabase> CreateOrFail(
      const TestDatabaseOptions& options = {});

  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  // Options with `database` set to this database.
  const MysqlOptions& options() const { return options_; }
  std::string dsn() const { return MysqlDsn(options_); }
  const std::string& name() const { return options_.database; }

 private:
  explicit TestDatabase(MysqlOptions options) : options_(std::move(options)) {}

  const MysqlOptions options_;
};

}  // namespace im::storage::testing

#endif  // IM_STORAGE_TESTING_TEST_DATABASE_H_
