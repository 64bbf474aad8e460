#include "storage/testing/test_database.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "storage/migrations/migrations.h"
#include "storage/mysql/mysql_pool.h"

namespace im::storage::testing {

absl::StatusOr<MysqlOptions> TestServerOptions() {
  const char* const names[] = {"IM_TEST_MYSQL_HOST", "IM_TEST_MYSQL_PORT",
                               "IM_TEST_MYSQL_USER", "IM_TEST_MYSQL_PASSWORD"};
  std::vector<std::string> missing;
  for (const char* name : names) {
    if (std::getenv(name) == nullptr) missing.push_back(name);
  }
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this test needs a MySQL/MariaDB server; missing environment: ",
        absl::StrJoin(missing, ", "),
        ". Start one with scripts/mariadb.sh start --dir /tmp/<you>-db "
        "--port <port> and run: bazel test <target> "
        "--test_env=IM_TEST_MYSQL_HOST=127.0.0.1 "
        "--test_env=IM_TEST_MYSQL_PORT=<port> "
        "--test_env=IM_TEST_MYSQL_USER=im --test_env=IM_TEST_MYSQL_PASSWORD=im"));
  }
  MysqlOptions options;
  options.host = std::getenv("IM_TEST_MYSQL_HOST");
  if (!absl::SimpleAtoi(std::getenv("IM_TEST_MYSQL_PORT"), &options.port)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "IM_TEST_MYSQL_PORT is not a number: ", std::getenv("IM_TEST_MYSQL_PORT")));
  }
  options.user = std::getenv("IM_TEST_MYSQL_USER");
  options.password = std::getenv("IM_TEST_MYSQL_PASSWORD");
  options.pool_size = 2;
  return options;
}

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::Create(
    const TestDatabaseOptions& test_options) {
  absl::StatusOr<MysqlOptions> options = TestServerOptions();
  if (!options.ok()) return options.status();
  static absl::BitGen* const bitgen = new absl::BitGen;
  static absl::Mutex bitgen_mu(absl::kConstInit);
  uint64_t nonce;
  {
    absl::MutexLock lock(&bitgen_mu);
    nonce = absl::Uniform<uint64_t>(*bitgen);
  }
  options->database = absl::StrCat("imtest_", getpid(), "_",
                                   absl::Hex(nonce, absl::kZeroPad16));
  options->pool_size = test_options.pool_size;
  if (auto s = CreateDatabaseIfMissing(*options); !s.ok()) return s;
  // From here on the destructor drops the database.
  std::unique_ptr<TestDatabase> db(new TestDatabase(*options));
  if (test_options.apply_migrations) {
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool =
        MysqlPool::Create(db->options());
    if (!pool.ok()) return pool.status();
    absl::StatusOr<MigrationReport> report =
        ApplyMigrations(**pool, EmbeddedMigrations());
    if (!report.ok()) return report.status();
  }
  return db;
}

std::unique_ptr<TestDatabase> TestDatabase::CreateOrFail(
    const TestDatabaseOptions& options) {
  absl::StatusOr<std::unique_ptr<TestDatabase>> db = Create(options);
  if (!db.ok()) {
    ADD_FAILURE() << "no test database: " << db.status();
    return nullptr;
  }
  return *std::move(db);
}

TestDatabase::~TestDatabase() {
  if (absl::Status s = DropDatabaseIfExists(options_); !s.ok()) {
    ADD_FAILURE() << "could not drop test database " << options_.database
                  << ": " << s;
  }
}

}  // namespace im::storage::testing
