#include "storage/migrations/migrations.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cppconn/resultset.h"
#include "openssl/evp.h"
#include "storage/migrations/embedded_migrations.h"

namespace im::storage {
namespace {

constexpr int kMaxLockNameBytes = 64;

// A migration as recorded in schema_migrations.
struct AppliedRecord {
  std::string name;
  std::string checksum;
  int statements_done = 0;
  bool complete = false;
};

constexpr char kCreateMigrationsTable[] = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INT UNSIGNED NOT NULL,
  name VARCHAR(255) NOT NULL,
  -- Hex SHA-256 of the migration file as applied.
  checksum CHAR(64) CHARACTER SET ascii NOT NULL,
  -- Statements of the file that completed; resumes an interrupted run.
  statements_done INT UNSIGNED NOT NULL,
  statements_total INT UNSIGNED NOT NULL,
  -- NULL until every statement has run.
  applied_at_us BIGINT NULL,
  PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4)sql";

// Releases a GET_LOCK lock when the run ends, however it ends.
class NamedLockGuard {
 public:
  NamedLockGuard(MysqlConnection& connection, std::string name)
      : connection_(connection), name_(std::move(name)) {}
  ~NamedLockGuard() {
    try {
      sql::PreparedStatement& release =
          connection_.Prepare("SELECT RELEASE_LOCK(?)");
      release.setString(1, name_);
      std::unique_ptr<sql::ResultSet> rows(release.executeQuery());
    } catch (const std::exception&) {
      // The server frees the lock when this session ends; make sure it does.
      connection_.MarkBroken();
    }
  }
  NamedLockGuard(const NamedLockGuard&) = delete;
  NamedLockGuard& operator=(const NamedLockGuard&) = delete;

 private:
  MysqlConnection& connection_;
  const std::string name_;
};

bool IsValidDatabaseName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           c == '$';
  });
}

absl::Status RunOnServer(const MysqlOptions& options, const std::string& sql) {
  if (!IsValidDatabaseName(options.database)) {
    return absl::InvalidArgumentError(
        "database name must be 1-64 characters of [A-Za-z0-9_$]");
  }
  MysqlOptions server = options;
  server.database.clear();
  server.pool_size = 1;
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(server);
  if (!pool.ok()) return pool.status();
  return (*pool)->Run("migrations.database",
                      [&](MysqlConnection& connection) -> absl::Status {
                        connection.Execute(sql);
                        return absl::OkStatus();
                      });
}

absl::StatusOr<std::map<int, AppliedRecord>> ReadAppliedLocked(
    MysqlConnection& connection) {
  std::map<int, AppliedRecord> applied;
  sql::PreparedStatement& select = connection.Prepare(
      "SELECT version, name, checksum, statements_done, applied_at_us "
      "FROM schema_migrations ORDER BY version");
  std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
  while (rows->next()) {
    AppliedRecord record;
    record.name = rows->getString(2);
    record.checksum = rows->getString(3);
    record.statements_done = static_cast<int>(rows->getUInt(4));
    record.complete = !rows->isNull(5);
    applied[static_cast<int>(rows->getUInt(1))] = std::move(record);
  }
  return applied;
}

absl::Status ApplyOneLocked(MysqlConnection& connection, const Migration& m,
                            const std::optional<AppliedRecord>& progress) {
  absl::StatusOr<std::vector<std::string>> statements =
      SplitSqlStatements(m.sql);
  if (!statements.ok()) {
    return absl::Status(statements.status().code(),
                        absl::StrCat(m.name, ": ", statements.status().message()));
  }
  int done = 0;
  if (progress.has_value()) {
    done = progress->statements_done;
  } else {
    sql::PreparedStatement& insert = connection.Prepare(
        "INSERT INTO schema_migrations (version, name, checksum, "
        "statements_done, statements_total, applied_at_us) "
        "VALUES (?, ?, ?, 0, ?, NULL)");
    insert.setUInt(1, m.version);
    insert.setString(2, m.name);
    insert.setString(3, MigrationChecksum(m.sql));
    insert.setUInt(4, static_cast<uint32_t>(statements->size()));
    insert.executeUpdate();
  }
  for (size_t i = done; i < statements->size(); ++i) {
    connection.Execute((*statements)[i]);
    sql::PreparedStatement& progress_update = connection.Prepare(
        "UPDATE schema_migrations SET statements_done = ? WHERE version = ?");
    progress_update.setUInt(1, static_cast<uint32_t>(i + 1));
    progress_update.setUInt(2, m.version);
    progress_update.executeUpdate();
  }
  sql::PreparedStatement& finish = connection.Prepare(
      "UPDATE schema_migrations SET applied_at_us = ? WHERE version = ?");
  finish.setInt64(1, absl::ToUnixMicros(absl::Now()));
  finish.setUInt(2, m.version);
  finish.executeUpdate();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<Migration>> MigrationsFromFiles(
    const std::vector<std::pair<std::string, std::string>>& name_and_sql) {
  std::vector<Migration> migrations;
  for (const auto& [name, sql] : name_and_sql) {
    Migration m;
    m.name = name;
    m.sql = sql;
    const size_t underscore = name.find('_');
    if (underscore == std::string::npos || underscore == 0 ||
        !absl::SimpleAtoi(absl::string_view(name).substr(0, underscore),
                          &m.version) ||
        m.version <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration name must be NNNN_name: ", name));
    }
    migrations.push_back(std::move(m));
  }
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) {
              return a.version < b.version;
            });
  for (size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version == migrations[i - 1].version) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration version ", migrations[i].version,
                       " used twice"));
    }
  }
  return migrations;
}

const std::vector<Migration>& EmbeddedMigrations() {
  static const std::vector<Migration>* const migrations = [] {
    std::vector<std::pair<std::string, std::string>> files;
    for (int i = 0; i < kEmbeddedMigrationFileCount; ++i) {
      files.emplace_back(kEmbeddedMigrationFiles[i].name,
                         kEmbeddedMigrationFiles[i].sql);
    }
    absl::StatusOr<std::vector<Migration>> parsed = MigrationsFromFiles(files);
    if (!parsed.ok()) {
      // embed_migrations.sh already rejects such files: a build defect.
      std::fprintf(stderr, "embedded migrations: %s\n",
                   parsed.status().ToString().c_str());
      std::abort();
    }
    return new std::vector<Migration>(*std::move(parsed));
  }();
  return *migrations;
}

std::string MigrationChecksum(absl::string_view sql) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(sql.data(), sql.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

absl::StatusOr<std::vector<std::string>> SplitSqlStatements(
    absl::string_view sql) {
  std::vector<std::string> statements;
  std::string current;
  bool has_code = false;  // current holds more than whitespace and comments
  auto finish = [&] {
    if (has_code) {
      statements.emplace_back(absl::StripAsciiWhitespace(current));
    }
    current.clear();
    has_code = false;
  };
  size_t i = 0;
  const size_t n = sql.size();
  while (i < n) {
    const char c = sql[i];
    if (c == '\'' || c == '"' || c == '`') {
      const size_t start = i++;
      bool closed = false;
      while (i < n) {
        if (sql[i] == '\\' && c != '`' && i + 1 < n) {
          i += 2;
          continue;
        }
        if (sql[i++] == c) {
          closed = true;
          break;
        }
      }
      if (!closed) {
        return absl::InvalidArgumentError("unterminated quoted text in SQL");
      }
      absl::StrAppend(&current, sql.substr(start, i - start));
      has_code = true;
      continue;
    }
    const bool dash_comment =
        c == '-' && i + 1 < n && sql[i + 1] == '-' &&
        (i + 2 == n || absl::ascii_isspace(static_cast<unsigned char>(sql[i + 2])));
    if (dash_comment || c == '#') {
      const size_t end = sql.find('\n', i);
      const size_t stop = end == absl::string_view::npos ? n : end;
      absl::StrAppend(&current, sql.substr(i, stop - i));
      i = stop;
      continue;
    }
    if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      const size_t end = sql.find("*/", i + 2);
      if (end == absl::string_view::npos) {
        return absl::InvalidArgumentError("unterminated comment in SQL");
      }
      // /*! ... */ and /*M! ... */ are executed by the server.
      const absl::string_view body = sql.substr(i + 2, end - i - 2);
      if (!body.empty() && (body[0] == '!' || absl::StartsWith(body, "M!"))) {
        has_code = true;
      }
      absl::StrAppend(&current, sql.substr(i, end + 2 - i));
      i = end + 2;
      continue;
    }
    if (c == ';') {
      finish();
      ++i;
      continue;
    }
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) has_code = true;
    current.push_back(c);
    ++i;
  }
  finish();
  return statements;
}

absl::StatusOr<MigrationReport> ApplyMigrations(
    MysqlPool& pool, absl::Span<const Migration> migrations,
    const MigrationOptions& options) {
  for (const Migration& m : migrations) {
    if (auto s = SplitSqlStatements(m.sql).status(); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(m.name, ": ", s.message()));
    }
  }
  return pool.Run<MigrationReport>(
      "migrations.apply",
      [&](MysqlConnection& connection) -> absl::StatusOr<MigrationReport> {
        std::string database;
        {
          std::unique_ptr<sql::ResultSet> rows(
              connection.Prepare("SELECT DATABASE()").executeQuery());
          if (!rows->next() || rows->isNull(1)) {
            return absl::FailedPreconditionError(
                "migrations need a database in the DSN");
          }
          database = rows->getString(1);
        }
        std::string lock_name = absl::StrCat("im_migrations:", database);
        if (lock_name.size() > kMaxLockNameBytes) {
          lock_name.resize(kMaxLockNameBytes);
        }
        {
          sql::PreparedStatement& lock =
              connection.Prepare("SELECT GET_LOCK(?, ?)");
          lock.setString(1, lock_name);
          lock.setInt(2, static_cast<int32_t>(std::max<int64_t>(
                             1, absl::ToInt64Seconds(options.lock_timeout))));
          std::unique_ptr<sql::ResultSet> rows(lock.executeQuery());
          if (!rows->next() || rows->isNull(1)) {
            return absl::InternalError("GET_LOCK failed");
          }
          if (rows->getInt(1) != 1) {
            return absl::DeadlineExceededError(absl::StrCat(
                "another migration run holds ", lock_name, " for over ",
                absl::FormatDuration(options.lock_timeout)));
          }
        }
        NamedLockGuard guard(connection, lock_name);

        connection.Execute(kCreateMigrationsTable);
        absl::StatusOr<std::map<int, AppliedRecord>> applied =
            ReadAppliedLocked(connection);
        if (!applied.ok()) return applied.status();

        MigrationReport report;
        int highest_complete = 0;
        std::map<int, const Migration*> known;
        for (const Migration& m : migrations) known[m.version] = &m;
        for (const auto& [version, record] : *applied) {
          auto it = known.find(version);
          if (it == known.end()) {
            report.unknown.push_back(version);
          } else if (record.checksum != MigrationChecksum(it->second->sql)) {
            return absl::FailedPreconditionError(absl::StrCat(
                "migration ", it->second->name,
                " changed after it was applied (recorded checksum ",
                record.checksum, "); add a new migration instead"));
          }
          if (record.complete) highest_complete = std::max(highest_complete, version);
        }
        for (const auto& [version, m] : known) {
          auto record = applied->find(version);
          if (record != applied->end() && record->second.complete) continue;
          if (version < highest_complete && record == applied->end()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "migration ", m->name, " is missing below applied version ",
                highest_complete));
          }
          std::optional<AppliedRecord> progress;
          if (record != applied->end()) progress = record->second;
          if (auto s = ApplyOneLocked(connection, *m, progress); !s.ok()) {
            return s;
          }
          report.applied.push_back(version);
          highest_complete = std::max(highest_complete, version);
        }
        report.current_version = highest_complete;
        return report;
      });
}

absl::StatusOr<std::vector<int>> AppliedMigrationVersions(MysqlPool& pool) {
  return pool.Run<std::vector<int>>(
      "migrations.versions",
      [&](MysqlConnection& connection) -> absl::StatusOr<std::vector<int>> {
        std::vector<int> versions;
        {
          std::unique_ptr<sql::ResultSet> exists(
              connection
                  .Prepare("SELECT COUNT(*) FROM information_schema.tables "
                           "WHERE table_schema = DATABASE() AND "
                           "table_name = 'schema_migrations'")
                  .executeQuery());
          if (!exists->next() || exists->getInt(1) == 0) return versions;
        }
        std::unique_ptr<sql::ResultSet> rows(
            connection
                .Prepare("SELECT version FROM schema_migrations "
                         "WHERE applied_at_us IS NOT NULL ORDER BY version")
                .executeQuery());
        while (rows->next()) {
          versions.push_back(static_cast<int>(rows->getUInt(1)));
        }
        return versions;
      });
}

absl::Status CreateDatabaseIfMissing(const MysqlOptions& options) {
  return RunOnServer(options,
                     absl::StrCat("CREATE DATABASE IF NOT EXISTS `",
                                  options.database,
                                  "` CHARACTER SET utf8mb4 "
                                  "COLLATE utf8mb4_unicode_ci"));
}

absl::Status DropDatabaseIfExists(const MysqlOptions& options) {
  return RunOnServer(options, absl::StrCat("DROP DATABASE IF EXISTS `",
                                           options.database, "`"));
}

}  // namespace im::storage
