#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/column_limits.h"
#include "storage/mysql/mysql_rows.h"
#include "storage/mysql/mysql_stores.h"

namespace im::storage {
namespace {

using mysql_rows::FromMicros;
using mysql_rows::Micros;
using mysql_rows::NullableTime;

constexpr char kSessionColumns[] =
    "id, user_id, device_name, device_kind, created_at_us, last_used_at_us, "
    "expires_at_us, revoked_at_us, revoke_reason";

SessionRecord ReadSession(sql::ResultSet& rows) {
  SessionRecord s;
  s.id = rows.getUInt64(1);
  s.user_id = rows.getUInt64(2);
  s.device_name = rows.getString(3).asStdString();
  s.device_kind = rows.getInt(4);
  s.created_at = FromMicros(rows.getInt64(5));
  s.last_used_at = FromMicros(rows.getInt64(6));
  s.expires_at = FromMicros(rows.getInt64(7));
  s.revoked_at = NullableTime(rows, 8);
  if (!rows.isNull(9)) s.revoke_reason = static_cast<RevokeReason>(rows.getInt(9));
  return s;
}

RevokedSessionRecord RevokedView(const SessionRecord& s) {
  return RevokedSessionRecord{s.id, s.user_id, *s.revoked_at};
}

// The session row (locked FOR UPDATE when `lock`), if any.
std::optional<SessionRecord> SelectSession(MysqlConnection& connection,
                                           uint64_t session_id, bool lock) {
  sql::PreparedStatement& select = connection.Prepare(
      absl::StrCat("SELECT ", kSessionColumns, " FROM sessions WHERE id = ?",
                   lock ? " FOR UPDATE" : ""));
  select.setUInt64(1, session_id);
  std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
  if (!rows->next()) return std::nullopt;
  return ReadSession(*rows);
}

void MarkRevoked(MysqlConnection& connection, SessionRecord& session,
                 RevokeReason reason, absl::Time now) {
  sql::PreparedStatement& update = connection.Prepare(
      "UPDATE sessions SET revoked_at_us = ?, revoke_reason = ? WHERE id = ?");
  update.setInt64(1, Micros(now));
  update.setInt(2, static_cast<int>(reason));
  update.setUInt64(3, session.id);
  update.executeUpdate();
  session.revoked_at = StoredTime(now);
  session.revoke_reason = reason;
}

void InsertRefreshToken(MysqlConnection& connection, const std::string& hash,
                        uint64_t session_id, absl::Time now,
                        absl::Time expires_at) {
  sql::PreparedStatement& insert = connection.Prepare(
      "INSERT INTO refresh_tokens (token_hash, session_id, created_at_us, "
      "expires_at_us, used_at_us) VALUES (?, ?, ?, ?, NULL)");
  insert.setString(1, hash);
  insert.setUInt64(2, session_id);
  insert.setInt64(3, Micros(now));
  insert.setInt64(4, Micros(expires_at));
  insert.executeUpdate();
}

absl::Status TokenTaken(absl::Status status) {
  if (absl::IsAlreadyExists(status)) {
    return absl::AlreadyExistsError("refresh token hash already stored");
  }
  return status;
}

class MysqlSessionStore : public SessionStore {
 public:
  explicit MysqlSessionStore(MysqlPool* pool) : pool_(pool) {}

  absl::StatusOr<SessionRecord> CreateSession(
      const NewSession& session) override {
    if (auto s = ValidateNewSession(session); !s.ok()) return s;
    absl::StatusOr<SessionRecord> created = pool_->RunInTransaction<SessionRecord>(
        "sessions.create",
        [&](MysqlConnection& connection) -> absl::StatusOr<SessionRecord> {
          sql::PreparedStatement& user =
              connection.Prepare("SELECT 1 FROM users WHERE id = ?");
          user.setUInt64(1, session.user_id);
          std::unique_ptr<sql::ResultSet> found(user.executeQuery());
          if (!found->next()) return absl::NotFoundError("user not found");

          sql::PreparedStatement& insert = connection.Prepare(
              "INSERT INTO sessions (user_id, device_name, device_kind, "
              "created_at_us, last_used_at_us, expires_at_us) "
              "VALUES (?, ?, ?, ?, ?, ?)");
          insert.setUInt64(1, session.user_id);
          insert.setString(2, session.device_name);
          insert.setInt(3, session.device_kind);
          insert.setInt64(4, Micros(session.now));
          insert.setInt64(5, Micros(session.now));
          insert.setInt64(6, Micros(session.expires_at));
          insert.executeUpdate();
          std::unique_ptr<sql::ResultSet> id(
              connection.Prepare("SELECT LAST_INSERT_ID()").executeQuery());
          id->next();
          SessionRecord record;
          record.id = id->getUInt64(1);
          record.user_id = session.user_id;
          record.device_name = session.device_name;
          record.device_kind = session.device_kind;
          record.created_at = StoredTime(session.now);
          record.last_used_at = record.created_at;
          record.expires_at = StoredTime(session.expires_at);
          if (!session.refresh_token_hash.empty()) {
            InsertRefreshToken(connection, session.refresh_token_hash,
                               record.id, session.now, session.expires_at);
          }
          return record;
        });
    if (!created.ok()) return TokenTaken(created.status());
    return created;
  }

  absl::StatusOr<SessionRecord> GetSession(uint64_t session_id) override {
    return pool_->Run<SessionRecord>(
        "sessions.get",
        [&](MysqlConnection& connection) -> absl::StatusOr<SessionRecord> {
          std::optional<SessionRecord> session =
              SelectSession(connection, session_id, /*lock=*/false);
          if (!session.has_value()) {
            return absl::NotFoundError("session not found");
          }
          return *session;
        });
  }

  absl::StatusOr<RotateResult> RotateRefreshToken(const std::string& old_hash,
                                                  const std::string& new_hash,
                                                  absl::Time new_expires_at,
                                                  absl::Time now) override {
    if (auto s = ValidateTokenHash("new_hash", new_hash); !s.ok()) return s;
    absl::StatusOr<RotateResult> rotated = pool_->RunInTransaction<RotateResult>(
        "sessions.rotate_refresh_token",
        [&](MysqlConnection& connection) -> absl::StatusOr<RotateResult> {
          RotateResult result;
          sql::PreparedStatement& token = connection.Prepare(
              "SELECT session_id, expires_at_us, used_at_us FROM "
              "refresh_tokens WHERE token_hash = ? FOR UPDATE");
          token.setString(1, old_hash);
          std::unique_ptr<sql::ResultSet> rows(token.executeQuery());
          if (!rows->next()) {
            result.outcome = RotateOutcome::kUnknown;
            return result;
          }
          const uint64_t session_id = rows->getUInt64(1);
          const absl::Time token_expires_at = FromMicros(rows->getInt64(2));
          const bool spent = !rows->isNull(3);
          rows.reset();
          std::optional<SessionRecord> session =
              SelectSession(connection, session_id, /*lock=*/true);
          if (!session.has_value()) {
            return absl::InternalError("refresh token without a session");
          }
          const absl::Time stored_now = StoredTime(now);
          if (session->revoked_at.has_value()) {
            result.outcome = RotateOutcome::kRevoked;
          } else if (spent) {
            MarkRevoked(connection, *session, RevokeReason::kRefreshReuse, now);
            result.outcome = RotateOutcome::kReuseRevoked;
          } else if (token_expires_at <= stored_now ||
                     session->expires_at <= stored_now) {
            result.outcome = RotateOutcome::kExpired;
          } else {
            sql::PreparedStatement& spend = connection.Prepare(
                "UPDATE refresh_tokens SET used_at_us = ? WHERE token_hash = ?");
            spend.setInt64(1, Micros(now));
            spend.setString(2, old_hash);
            spend.executeUpdate();
            InsertRefreshToken(connection, new_hash, session_id, now,
                               new_expires_at);
            sql::PreparedStatement& extend = connection.Prepare(
                "UPDATE sessions SET expires_at_us = ?, last_used_at_us = ? "
                "WHERE id = ?");
            extend.setInt64(1, Micros(new_expires_at));
            extend.setInt64(2, Micros(now));
            extend.setUInt64(3, session_id);
            extend.executeUpdate();
            session->expires_at = StoredTime(new_expires_at);
            session->last_used_at = stored_now;
            result.outcome = RotateOutcome::kRotated;
          }
          result.session = *session;
          return result;
        });
    if (!rotated.ok()) return TokenTaken(rotated.status());
    return rotated;
  }

  absl::StatusOr<RevokedSessionRecord> RevokeSession(uint64_t user_id,
                                                     uint64_t session_id,
                                                     RevokeReason reason,
                                                     absl::Time now) override {
    return pool_->RunInTransaction<RevokedSessionRecord>(
        "sessions.revoke",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<RevokedSessionRecord> {
          std::optional<SessionRecord> session =
              SelectSession(connection, session_id, /*lock=*/true);
          if (!session.has_value() || session->user_id != user_id) {
            return absl::NotFoundError("session not found");
          }
          if (!session->revoked_at.has_value()) {
            MarkRevoked(connection, *session, reason, now);
          }
          return RevokedView(*session);
        });
  }

  absl::StatusOr<std::vector<RevokedSessionRecord>> RevokeAllSessions(
      uint64_t user_id, RevokeReason reason, absl::Time now) override {
    return pool_->RunInTransaction<std::vector<RevokedSessionRecord>>(
        "sessions.revoke_all",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<RevokedSessionRecord>> {
          sql::PreparedStatement& live = connection.Prepare(
              "SELECT id FROM sessions WHERE user_id = ? AND revoked_at_us IS "
              "NULL AND expires_at_us > ? ORDER BY id FOR UPDATE");
          live.setUInt64(1, user_id);
          live.setInt64(2, Micros(now));
          std::unique_ptr<sql::ResultSet> rows(live.executeQuery());
          std::vector<RevokedSessionRecord> revoked;
          while (rows->next()) {
            revoked.push_back(RevokedSessionRecord{rows->getUInt64(1), user_id,
                                                   StoredTime(now)});
          }
          if (revoked.empty()) return revoked;
          sql::PreparedStatement& update = connection.Prepare(
              "UPDATE sessions SET revoked_at_us = ?, revoke_reason = ? "
              "WHERE user_id = ? AND revoked_at_us IS NULL AND "
              "expires_at_us > ?");
          update.setInt64(1, Micros(now));
          update.setInt(2, static_cast<int>(reason));
          update.setUInt64(3, user_id);
          update.setInt64(4, Micros(now));
          update.executeUpdate();
          return revoked;
        });
  }

  absl::StatusOr<std::vector<SessionRecord>> ListLiveSessions(
      uint64_t user_id, absl::Time now) override {
    return pool_->Run<std::vector<SessionRecord>>(
        "sessions.list_live",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<SessionRecord>> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", kSessionColumns,
              " FROM sessions WHERE user_id = ? AND revoked_at_us IS NULL AND "
              "expires_at_us > ? ORDER BY created_at_us DESC, id DESC"));
          select.setUInt64(1, user_id);
          select.setInt64(2, Micros(now));
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          std::vector<SessionRecord> sessions;
          while (rows->next()) sessions.push_back(ReadSession(*rows));
          return sessions;
        });
  }

  absl::StatusOr<std::vector<RevokedSessionRecord>> ListRevokedSince(
      absl::Time since) override {
    return pool_->Run<std::vector<RevokedSessionRecord>>(
        "sessions.list_revoked_since",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<RevokedSessionRecord>> {
          sql::PreparedStatement& select = connection.Prepare(
              "SELECT id, user_id, revoked_at_us FROM sessions WHERE "
              "revoked_at_us >= ? ORDER BY revoked_at_us, id");
          select.setInt64(1, Micros(since));
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          std::vector<RevokedSessionRecord> revoked;
          while (rows->next()) {
            revoked.push_back(RevokedSessionRecord{
                rows->getUInt64(1), rows->getUInt64(2),
                FromMicros(rows->getInt64(3))});
          }
          return revoked;
        });
  }

 private:
  MysqlPool* const pool_;
};

}  // namespace

std::unique_ptr<SessionStore> NewMysqlSessionStore(MysqlPool* pool) {
  return std::make_unique<MysqlSessionStore>(pool);
}

}  // namespace im::storage
