#ifndef IM_SERVICES_COMMON_DATABASE_FLAGS_H_
#define IM_SERVICES_COMMON_DATABASE_FLAGS_H_

#include <memory>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "observability/server_metrics.h"
#include "services/common/service_host.h"
#include "storage/mysql/mysql_database.h"

// For main.cc files of services with a database: --mysql_dsn (from
// server_flags) and --migrate.
ABSL_DECLARE_FLAG(bool, migrate);

namespace im {

// Opens the stores on --mysql_dsn, after bringing the schema up to date
// with the embedded migrations unless --nomigrate (safe when several
// services start at once: the runner holds a named lock). `observer` may be
// null and must outlive the database.
absl::StatusOr<std::unique_ptr<storage::MysqlDatabase>> OpenDatabaseFromFlags(
    storage::MysqlPoolObserver* observer = nullptr);

// OpenDatabaseFromFlags, or for --mysql_dsn=memory: the in-memory stores
// (development only: everything is lost at exit; a warning says so).
absl::StatusOr<std::unique_ptr<storage::Database>> OpenStoresFromFlags(
    storage::MysqlPoolObserver* observer = nullptr);

// The same with the MySQL pool's metrics (mysql_pool_*, mysql_query_*; see
// observability/mysql_pool_metrics.h) in `metrics`. `bundle` owns the stores
// and their metrics.
absl::StatusOr<storage::MysqlDatabase*> OpenDatabaseFromFlags(
    ServiceBundle& bundle, observability::ServerMetrics& metrics);
absl::StatusOr<storage::Database*> OpenStoresFromFlags(
    ServiceBundle& bundle, observability::ServerMetrics& metrics);

}  // namespace im

#endif  // IM_SERVICES_COMMON_DATABASE_FLAGS_H_
