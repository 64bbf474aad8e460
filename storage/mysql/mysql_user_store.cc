#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cppconn/datatype.h"
#include "storage/column_limits.h"
#include "storage/mysql/mysql_rows.h"
#include "storage/mysql/mysql_stores.h"

namespace im::storage {
namespace {

using mysql_rows::Chunks;
using mysql_rows::ForEachRowWithIds;
using mysql_rows::FromMicros;
using mysql_rows::kMaxListKeys;
using mysql_rows::Marks;
using mysql_rows::Micros;
using mysql_rows::NullableTime;
using mysql_rows::PaddedCount;

constexpr char kUserColumns[] =
    "id, username, username_norm, display_name, password_hash, kind, "
    "is_admin, status_text, created_at_us, last_seen_at_us";

constexpr char kServiceAccountSelect[] =
    "SELECT s.user_id, u.username, s.description, s.key_prefix, "
    "s.created_by, s.created_at_us, s.revoked_at_us "
    "FROM service_accounts s JOIN users u ON u.id = s.user_id ";

UserRecord ReadUser(sql::ResultSet& rows) {
  UserRecord u;
  u.id = rows.getUInt64(1);
  u.username = rows.getString(2).asStdString();
  u.username_norm = rows.getString(3).asStdString();
  u.display_name = rows.getString(4).asStdString();
  if (!rows.isNull(5)) u.password_hash = rows.getString(5).asStdString();
  u.kind = static_cast<UserKind>(rows.getInt(6));
  u.is_admin = rows.getInt(7) != 0;
  u.status_text = rows.getString(8).asStdString();
  u.created_at = FromMicros(rows.getInt64(9));
  u.last_seen_at = NullableTime(rows, 10);
  return u;
}

ServiceAccountRecord ReadServiceAccount(sql::ResultSet& rows) {
  ServiceAccountRecord a;
  a.user_id = rows.getUInt64(1);
  a.name = rows.getString(2).asStdString();
  a.description = rows.getString(3).asStdString();
  a.key_prefix = rows.getString(4).asStdString();
  a.created_by = rows.getUInt64(5);
  a.created_at = FromMicros(rows.getInt64(6));
  a.revoked_at = NullableTime(rows, 7);
  return a;
}

absl::Status UserNotFound() { return absl::NotFoundError("user not found"); }

uint64_t LastInsertId(MysqlConnection& connection) {
  std::unique_ptr<sql::ResultSet> rows(
      connection.Prepare("SELECT LAST_INSERT_ID()").executeQuery());
  rows->next();
  return rows->getUInt64(1);
}

// The store's message for a taken unique key (the server's names values).
absl::Status RenameAlreadyExists(absl::Status status, absl::string_view what) {
  if (absl::IsAlreadyExists(status)) return absl::AlreadyExistsError(what);
  return status;
}

class MysqlUserStore : public UserStore {
 public:
  explicit MysqlUserStore(MysqlPool* pool) : pool_(pool) {}

  absl::StatusOr<UserRecord> CreateUser(const NewUser& user) override {
    if (auto s = ValidateNewUser(user); !s.ok()) return s;
    absl::StatusOr<UserRecord> created = pool_->Run<UserRecord>(
        "users.create",
        [&](MysqlConnection& connection) -> absl::StatusOr<UserRecord> {
          sql::PreparedStatement& insert = connection.Prepare(
              "INSERT INTO users (username, username_norm, display_name, "
              "password_hash, kind, is_admin, status_text, created_at_us) "
              "VALUES (?, ?, ?, ?, 1, ?, '', ?)");
          insert.setString(1, user.username);
          insert.setString(2, user.username_norm);
          insert.setString(3, user.display_name);
          if (user.password_hash.empty()) {
            insert.setNull(4, sql::DataType::VARCHAR);
          } else {
            insert.setString(4, user.password_hash);
          }
          insert.setInt(5, user.is_admin ? 1 : 0);
          insert.setInt64(6, Micros(user.created_at));
          insert.executeUpdate();
          UserRecord record;
          record.id = LastInsertId(connection);
          record.username = user.username;
          record.username_norm = user.username_norm;
          record.display_name = user.display_name;
          record.password_hash = user.password_hash;
          record.kind = UserKind::kPerson;
          record.is_admin = user.is_admin;
          record.created_at = StoredTime(user.created_at);
          return record;
        });
    if (!created.ok()) {
      return RenameAlreadyExists(created.status(), "username taken");
    }
    return created;
  }

  absl::StatusOr<UserRecord> GetUserByUsername(
      const std::string& username_norm) override {
    return pool_->Run<UserRecord>(
        "users.get_by_username",
        [&](MysqlConnection& connection) -> absl::StatusOr<UserRecord> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", kUserColumns, " FROM users WHERE username_norm = ?"));
          select.setString(1, username_norm);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          if (!rows->next()) return UserNotFound();
          return ReadUser(*rows);
        });
  }

  absl::StatusOr<UserRecord> GetUser(uint64_t user_id) override {
    return pool_->Run<UserRecord>(
        "users.get",
        [&](MysqlConnection& connection) -> absl::StatusOr<UserRecord> {
          sql::PreparedStatement& select = connection.Prepare(
              absl::StrCat("SELECT ", kUserColumns, " FROM users WHERE id = ?"));
          select.setUInt64(1, user_id);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          if (!rows->next()) return UserNotFound();
          return ReadUser(*rows);
        });
  }

  absl::StatusOr<std::vector<UserRecord>> GetUsers(
      absl::Span<const uint64_t> user_ids) override {
    std::vector<uint64_t> ids(user_ids.begin(), user_ids.end());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.empty()) return std::vector<UserRecord>{};
    return pool_->Run<std::vector<UserRecord>>(
        "users.get_many",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<UserRecord>> {
          std::vector<UserRecord> users;
          ForEachRowWithIds(
              connection, absl::StrCat("SELECT ", kUserColumns,
                                       " FROM users WHERE id IN ("),
              ") ORDER BY id", {}, ids,
              [&](sql::ResultSet& rows) { users.push_back(ReadUser(rows)); });
          return users;
        });
  }

  absl::StatusOr<std::vector<UserRecord>> GetUsersByUsername(
      absl::Span<const std::string> usernames_norm) override {
    std::vector<std::string> names(usernames_norm.begin(), usernames_norm.end());
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    if (names.empty()) return std::vector<UserRecord>{};
    return pool_->Run<std::vector<UserRecord>>(
        "users.get_many_by_username",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<UserRecord>> {
          std::vector<UserRecord> users;
          for (const auto& [offset, count] :
               Chunks(names.size(), kMaxListKeys)) {
            const size_t padded = PaddedCount(count);
            sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
                "SELECT ", kUserColumns, " FROM users WHERE username_norm IN (",
                Marks(padded), ")"));
            for (size_t i = 0; i < padded; ++i) {
              select.setString(static_cast<int>(i + 1),
                               names[offset + std::min(i, count - 1)]);
            }
            std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
            while (rows->next()) users.push_back(ReadUser(*rows));
          }
          std::sort(users.begin(), users.end(),
                    [](const UserRecord& a, const UserRecord& b) {
                      return a.id < b.id;
                    });
          return users;
        });
  }

  absl::Status SetAdmin(uint64_t user_id, bool is_admin) override {
    return UpdateOne("users.set_admin",
                     "UPDATE users SET is_admin = ? WHERE id = ?",
                     [&](sql::PreparedStatement& update) {
                       update.setInt(1, is_admin ? 1 : 0);
                       update.setUInt64(2, user_id);
                     });
  }

  absl::Status SetStatusText(uint64_t user_id,
                             const std::string& text) override {
    if (auto s = ValidateStatusText(text); !s.ok()) return s;
    return UpdateOne("users.set_status_text",
                     "UPDATE users SET status_text = ? WHERE id = ?",
                     [&](sql::PreparedStatement& update) {
                       update.setString(1, text);
                       update.setUInt64(2, user_id);
                     });
  }

  absl::Status UpdateLastSeen(
      absl::Span<const std::pair<uint64_t, absl::Time>> last_seen) override {
    // Latest time per user, ascending ids (a stable lock order).
    std::map<uint64_t, int64_t> latest;
    for (const auto& [id, time] : last_seen) {
      auto [it, inserted] = latest.emplace(id, Micros(time));
      if (!inserted) it->second = std::max(it->second, Micros(time));
    }
    if (latest.empty()) return absl::OkStatus();
    const std::vector<std::pair<uint64_t, int64_t>> rows(latest.begin(),
                                                         latest.end());
    return pool_->RunInTransaction(
        "users.update_last_seen",
        [&](MysqlConnection& connection) -> absl::Status {
          for (const auto& [offset, count] :
               Chunks(rows.size(), kMaxListKeys)) {
            const size_t padded = PaddedCount(count);
            std::string values = "SELECT ? AS id, ? AS t";
            for (size_t i = 1; i < padded; ++i) values += " UNION ALL SELECT ?, ?";
            sql::PreparedStatement& update = connection.Prepare(absl::StrCat(
                "UPDATE users u JOIN (", values,
                ") v ON u.id = v.id SET u.last_seen_at_us = "
                "GREATEST(COALESCE(u.last_seen_at_us, v.t), v.t)"));
            int index = 1;
            for (size_t i = 0; i < padded; ++i) {
              const auto& row = rows[offset + std::min(i, count - 1)];
              update.setUInt64(index++, row.first);
              update.setInt64(index++, row.second);
            }
            update.executeUpdate();
          }
          return absl::OkStatus();
        });
  }

  absl::StatusOr<ServiceAccountRecord> CreateServiceAccount(
      const NewServiceAccount& account) override {
    if (auto s = ValidateNewServiceAccount(account); !s.ok()) return s;
    absl::StatusOr<ServiceAccountRecord> created =
        pool_->RunInTransaction<ServiceAccountRecord>(
            "users.create_service_account",
            [&](MysqlConnection& connection)
                -> absl::StatusOr<ServiceAccountRecord> {
              sql::PreparedStatement& user = connection.Prepare(
                  "INSERT INTO users (username, username_norm, display_name, "
                  "password_hash, kind, is_admin, status_text, created_at_us) "
                  "VALUES (?, ?, ?, NULL, 2, 0, '', ?)");
              user.setString(1, account.name);
              user.setString(2, account.name_norm);
              user.setString(3, account.name);
              user.setInt64(4, Micros(account.created_at));
              user.executeUpdate();
              ServiceAccountRecord record;
              record.user_id = LastInsertId(connection);
              sql::PreparedStatement& service = connection.Prepare(
                  "INSERT INTO service_accounts (user_id, description, "
                  "api_key_hash, key_prefix, created_by, created_at_us) "
                  "VALUES (?, ?, ?, ?, ?, ?)");
              service.setUInt64(1, record.user_id);
              service.setString(2, account.description);
              service.setString(3, account.api_key_hash);
              service.setString(4, account.key_prefix);
              service.setUInt64(5, account.created_by);
              service.setInt64(6, Micros(account.created_at));
              service.executeUpdate();
              record.name = account.name;
              record.description = account.description;
              record.key_prefix = account.key_prefix;
              record.created_by = account.created_by;
              record.created_at = StoredTime(account.created_at);
              return record;
            });
    if (!created.ok()) {
      return RenameAlreadyExists(created.status(),
                                 "name or api key hash taken");
    }
    return created;
  }

  absl::StatusOr<std::vector<ServiceAccountRecord>> ListServiceAccounts()
      override {
    return pool_->Run<std::vector<ServiceAccountRecord>>(
        "users.list_service_accounts",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<ServiceAccountRecord>> {
          std::unique_ptr<sql::ResultSet> rows(
              connection
                  .Prepare(absl::StrCat(kServiceAccountSelect,
                                        "ORDER BY s.user_id"))
                  .executeQuery());
          std::vector<ServiceAccountRecord> accounts;
          while (rows->next()) accounts.push_back(ReadServiceAccount(*rows));
          return accounts;
        });
  }

  absl::StatusOr<ServiceAccountRecord> FindServiceAccountByKeyHash(
      const std::string& api_key_hash) override {
    return pool_->Run<ServiceAccountRecord>(
        "users.find_service_account",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<ServiceAccountRecord> {
          sql::PreparedStatement& select = connection.Prepare(
              absl::StrCat(kServiceAccountSelect, "WHERE s.api_key_hash = ?"));
          select.setString(1, api_key_hash);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          if (!rows->next()) {
            return absl::NotFoundError("service account not found");
          }
          return ReadServiceAccount(*rows);
        });
  }

  absl::StatusOr<ServiceAccountRecord> RevokeServiceAccount(
      uint64_t user_id, absl::Time now) override {
    return pool_->RunInTransaction<ServiceAccountRecord>(
        "users.revoke_service_account",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<ServiceAccountRecord> {
          sql::PreparedStatement& update = connection.Prepare(
              "UPDATE service_accounts SET revoked_at_us = "
              "COALESCE(revoked_at_us, ?) WHERE user_id = ?");
          update.setInt64(1, Micros(now));
          update.setUInt64(2, user_id);
          if (update.executeUpdate() == 0) {
            return absl::NotFoundError("service account not found");
          }
          sql::PreparedStatement& select = connection.Prepare(
              absl::StrCat(kServiceAccountSelect, "WHERE s.user_id = ?"));
          select.setUInt64(1, user_id);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          if (!rows->next()) {
            return absl::NotFoundError("service account not found");
          }
          return ReadServiceAccount(*rows);
        });
  }

 private:
  // An UPDATE of one row by id; NOT_FOUND when no row matched.
  template <typename Bind>
  absl::Status UpdateOne(absl::string_view operation, const std::string& sql,
                         Bind bind) {
    return pool_->Run(operation,
                      [&](MysqlConnection& connection) -> absl::Status {
                        sql::PreparedStatement& update =
                            connection.Prepare(sql);
                        bind(update);
                        if (update.executeUpdate() == 0) return UserNotFound();
                        return absl::OkStatus();
                      });
  }

  MysqlPool* const pool_;
};

}  // namespace

std::unique_ptr<UserStore> NewMysqlUserStore(MysqlPool* pool) {
  return std::make_unique<MysqlUserStore>(pool);
}

}  // namespace im::storage
