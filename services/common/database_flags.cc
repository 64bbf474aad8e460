#include "services/common/database_flags.h"

#include <memory>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "observability/mysql_pool_metrics.h"
#include "services/common/server_flags.h"
#include "spdlog/spdlog.h"
#include "storage/fake/fake_database.h"
#include "storage/migrations/migrations.h"

ABSL_FLAG(bool, migrate, true,
          "Apply the embedded schema migrations at start-up (--nomigrate to "
          "skip, e.g. when a separate migrate step owns the schema)");

namespace im {

absl::StatusOr<std::unique_ptr<storage::MysqlDatabase>> OpenDatabaseFromFlags(
    storage::MysqlPoolObserver* observer) {
  absl::StatusOr<storage::MysqlOptions> options =
      storage::ParseMysqlDsn(absl::GetFlag(FLAGS_mysql_dsn));
  if (!options.ok()) return options.status();
  if (absl::GetFlag(FLAGS_migrate)) {
    storage::MysqlOptions migration_options = *options;
    migration_options.pool_size = 1;
    absl::StatusOr<std::unique_ptr<storage::MysqlPool>> pool =
        storage::MysqlPool::Create(migration_options);
    if (!pool.ok()) return pool.status();
    absl::StatusOr<storage::MigrationReport> report =
        storage::ApplyMigrations(**pool, storage::EmbeddedMigrations());
    if (!report.ok()) return report.status();
    spdlog::info("schema of {} at version {} (applied now: [{}])",
                 storage::RedactedMysqlDsn(*options), report->current_version,
                 absl::StrJoin(report->applied, ", "));
  }
  return storage::MysqlDatabase::Create(*options, observer);
}

absl::StatusOr<std::unique_ptr<storage::Database>> OpenStoresFromFlags(
    storage::MysqlPoolObserver* observer) {
  if (absl::GetFlag(FLAGS_mysql_dsn) == "memory:") {
    spdlog::warn(
        "--mysql_dsn=memory: all data lives in memory and is lost at exit "
        "(development only)");
    return std::make_unique<storage::FakeDatabase>();
  }
  absl::StatusOr<std::unique_ptr<storage::MysqlDatabase>> mysql =
      OpenDatabaseFromFlags(observer);
  if (!mysql.ok()) return mysql.status();
  return std::unique_ptr<storage::Database>(*std::move(mysql));
}

absl::StatusOr<storage::MysqlDatabase*> OpenDatabaseFromFlags(
    ServiceBundle& bundle, observability::ServerMetrics& metrics) {
  // Owned first, so destroyed after the pool that reports to it.
  auto* pool_metrics = bundle.Own(
      std::make_unique<observability::MysqlPoolMetrics>(metrics.registry()));
  absl::StatusOr<std::unique_ptr<storage::MysqlDatabase>> database =
      OpenDatabaseFromFlags(pool_metrics);
  if (!database.ok()) return database.status();
  pool_metrics->SetPoolSize((*database)->pool()->options().pool_size);
  return bundle.Own(*std::move(database));
}

absl::StatusOr<storage::Database*> OpenStoresFromFlags(
    ServiceBundle& bundle, observability::ServerMetrics& metrics) {
  if (absl::GetFlag(FLAGS_mysql_dsn) == "memory:") {
    absl::StatusOr<std::unique_ptr<storage::Database>> stores =
        OpenStoresFromFlags();
    if (!stores.ok()) return stores.status();
    return bundle.Own(*std::move(stores));
  }
  absl::StatusOr<storage::MysqlDatabase*> database =
      OpenDatabaseFromFlags(bundle, metrics);
  if (!database.ok()) return database.status();
  return *database;
}

}  // namespace im
