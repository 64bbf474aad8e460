#ifndef IM_STORAGE_MIGRATIONS_MIGRATIONS_H_
#define IM_STORAGE_MIGRATIONS_MIGRATIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "storage/mysql/mysql_options.h"
#include "storage/mysql/mysql_pool.h"

// Versioned schema migrations: storage/migrations/NNNN_name.sql, compiled
// into the binary. ApplyMigrations brings a database up to date:
//
// - It holds a named server lock (GET_LOCK, per database) for the whole
//   run, so services starting at once apply each migration exactly once.
// - schema_migrations records each version with a SHA-256 of its file. A
//   file that changed after it was applied makes the run fail with
//   FAILED_PRECONDITION: write a new migration instead.
// - A migration's statements run one by one (DDL commits implicitly), and
//   progress is recorded after each, so a run interrupted mid-migration
//   resumes after the last statement that completed.
// - Versions are applied in order; a missing version below an applied one
//   is FAILED_PRECONDITION. Versions the binary does not know (a newer
//   binary migrated the database) are left alone and reported.
//
// Files hold plain statements separated by ';' (quotes and comments are
// understood; no DELIMITER, so no stored programs).

namespace im::storage {

struct Migration {
  int version = 0;
  std::string name;  // e.g. "0001_initial"
  std::string sql;
};

// The embedded migrations, ascending by version (validated once: unique
// versions; a malformed set aborts at startup, as it is a build defect
// caught by migrations_test).
const std::vector<Migration>& EmbeddedMigrations();

// Parses "NNNN_name" file names into migrations, ascending; INVALID_ARGUMENT
// for a bad name or a repeated version.
absl::StatusOr<std::vector<Migration>> MigrationsFromFiles(
    const std::vector<std::pair<std::string, std::string>>& name_and_sql);

// Hex SHA-256 of a migration's text.
std::string MigrationChecksum(absl::string_view sql);

// The statements of a migration file: split at ';' outside quotes,
// backticks and comments; statements holding only comments are dropped.
// INVALID_ARGUMENT for an unterminated quote or comment.
absl::StatusOr<std::vector<std::string>> SplitSqlStatements(
    absl::string_view sql);

struct MigrationOptions {
  // How long to wait for another process's run to finish.
  absl::Duration lock_timeout = absl::Seconds(60);
};

struct MigrationReport {
  std::vector<int> applied;        // applied by this run, ascending
  std::vector<int> unknown;        // recorded but not in this binary
  int current_version = 0;         // highest version recorded afterwards
};

absl::StatusOr<MigrationReport> ApplyMigrations(
    MysqlPool& pool, absl::Span<const Migration> migrations,
    const MigrationOptions& options = {});

// Versions recorded as fully applied, ascending (empty for a fresh
// database).
absl::StatusOr<std::vector<int>> AppliedMigrationVersions(MysqlPool& pool);

// Connects without a default database and creates options.database
// (utf8mb4) when missing.
absl::Status CreateDatabaseIfMissing(const MysqlOptions& options);
// Drops options.database if it exists (tests).
absl::Status DropDatabaseIfExists(const MysqlOptions& options);

}  // namespace im::storage

#endif  // IM_STORAGE_MIGRATIONS_MIGRATIONS_H_
