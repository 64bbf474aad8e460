// Applies the embedded schema migrations to a database.
//
//   migrate --mysql_dsn=mysql://im:im@127.0.0.1:13306/im [--create_database]
//   migrate --mysql_dsn=... --status     (lists applied and pending versions)
//
// Exit status 0 on success, 1 on any error (printed to stderr).

#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "storage/migrations/migrations.h"
#include "storage/mysql/mysql_options.h"
#include "storage/mysql/mysql_pool.h"

ABSL_FLAG(std::string, mysql_dsn, "",
          "mysql://USER:PASSWORD@HOST:PORT/DATABASE of the database to migrate");
ABSL_FLAG(bool, create_database, false,
          "create the DSN's database (utf8mb4) first if it does not exist");
ABSL_FLAG(bool, status, false,
          "only print applied and pending versions; change nothing");
ABSL_FLAG(absl::Duration, lock_timeout, absl::Seconds(60),
          "how long to wait for another migration run to finish");

namespace im::storage {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "migrate: %s\n", status.ToString().c_str());
  return 1;
}

int Run() {
  absl::StatusOr<MysqlOptions> options =
      ParseMysqlDsn(absl::GetFlag(FLAGS_mysql_dsn));
  if (!options.ok()) return Fail(options.status());
  if (options->database.empty()) {
    return Fail(absl::InvalidArgumentError("the DSN must name a database"));
  }
  options->pool_size = 1;
  if (absl::GetFlag(FLAGS_create_database)) {
    if (auto s = CreateDatabaseIfMissing(*options); !s.ok()) return Fail(s);
  }
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  if (!pool.ok()) return Fail(pool.status());

  const std::vector<Migration>& migrations = EmbeddedMigrations();
  if (absl::GetFlag(FLAGS_status)) {
    absl::StatusOr<std::vector<int>> applied = AppliedMigrationVersions(**pool);
    if (!applied.ok()) return Fail(applied.status());
    const std::set<int> done(applied->begin(), applied->end());
    for (const Migration& m : migrations) {
      std::printf("%s %s\n", done.count(m.version) > 0 ? "applied" : "pending",
                  m.name.c_str());
    }
    return 0;
  }
  MigrationOptions migration_options;
  migration_options.lock_timeout = absl::GetFlag(FLAGS_lock_timeout);
  absl::StatusOr<MigrationReport> report =
      ApplyMigrations(**pool, migrations, migration_options);
  if (!report.ok()) return Fail(report.status());
  std::printf("database %s at version %d; applied now: [%s]%s\n",
              options->database.c_str(), report->current_version,
              absl::StrJoin(report->applied, ", ").c_str(),
              report->unknown.empty()
                  ? ""
                  : absl::StrCat("; unknown to this binary: [",
                                 absl::StrJoin(report->unknown, ", "), "]")
                        .c_str());
  return 0;
}

}  // namespace
}  // namespace im::storage

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Applies the embedded schema migrations: migrate --mysql_dsn=mysql://"
      "USER:PASSWORD@HOST:PORT/DATABASE [--create_database] [--status]");
  absl::ParseCommandLine(argc, argv);
  return im::storage::Run();
}
