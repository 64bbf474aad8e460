#ifndef IM_STORAGE_MYSQL_MYSQL_OPTIONS_H_
#define IM_STORAGE_MYSQL_MYSQL_OPTIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace im::storage {

// Where and how to reach MySQL/MariaDB. Filled by a main from flags, or
// from a DSN:
//   mysql://USER[:PASSWORD]@HOST[:PORT][/DATABASE][?KEY=VALUE&...]
// USER, PASSWORD and DATABASE are percent-decoded; HOST may be [IPv6].
// Query keys: pool, acquire_timeout, connect_timeout, read_timeout,
// write_timeout, lock_wait_timeout, validate_after_idle (durations such as
// "5s" or "250ms"), max_transaction_attempts, max_cached_statements.
struct MysqlOptions {
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string user;
  std::string password;
  // Empty: no default database (only for server-level work such as
  // CREATE DATABASE).
  std::string database;

  // Most connections open at once; callers beyond it wait.
  int pool_size = 16;
  // How long Acquire waits for a free connection.
  absl::Duration acquire_timeout = absl::Seconds(5);
  // Socket timeouts of the client library (whole seconds, at least 1).
  absl::Duration connect_timeout = absl::Seconds(3);
  absl::Duration read_timeout = absl::Seconds(30);
  absl::Duration write_timeout = absl::Seconds(30);
  // innodb_lock_wait_timeout of every session (whole seconds, at least 1);
  // below read_timeout so a blocked statement fails with ABORTED from the
  // server instead of a client timeout.
  absl::Duration lock_wait_timeout = absl::Seconds(10);
  // An idle connection older than this is pinged before it is handed out.
  absl::Duration validate_after_idle = absl::Seconds(5);
  // Attempts of a transaction that keeps hitting deadlocks.
  int max_transaction_attempts = 4;
  // Prepared statements kept per connection (least recently used go).
  int max_cached_statements = 128;
};

// INVALID_ARGUMENT naming the first bad field.
absl::Status ValidateMysqlOptions(const MysqlOptions& options);

absl::StatusOr<MysqlOptions> ParseMysqlDsn(absl::string_view dsn);

// The DSN of `options` (password included; see RedactedMysqlDsn for logs).
std::string MysqlDsn(const MysqlOptions& options);
std::string RedactedMysqlDsn(const MysqlOptions& options);

}  // namespace im::storage

#endif  // IM_STORAGE_MYSQL_MYSQL_OPTIONS_H_
