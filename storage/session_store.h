#ifndef IM_STORAGE_SESSION_STORE_H_
#define IM_STORAGE_SESSION_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace im::storage {

enum class RevokeReason : uint8_t {
  kLogout = 1,
  kLogoutAll = 2,
  kRefreshReuse = 3,
  kServiceAccountRevoked = 4,
  kAdmin = 5,
};

struct SessionRecord {
  uint64_t id = 0;
  uint64_t user_id = 0;
  std::string device_name;
  int device_kind = 0;  // im.auth.v1.DeviceKind value
  absl::Time created_at;
  absl::Time last_used_at;
  absl::Time expires_at;
  std::optional<absl::Time> revoked_at;
  std::optional<RevokeReason> revoke_reason;
};

struct NewSession {
  uint64_t user_id = 0;
  std::string device_name;
  int device_kind = 0;
  absl::Time now;
  absl::Time expires_at;
  // First refresh token (SHA-256, 32 raw bytes); empty for sessions without
  // refresh (service accounts).
  std::string refresh_token_hash;
};

struct RevokedSessionRecord {
  uint64_t session_id = 0;
  uint64_t user_id = 0;
  absl::Time revoked_at;
};

// What RotateRefreshToken found.
enum class RotateOutcome {
  kRotated,       // old token spent, new one stored
  kUnknown,       // no such token
  kExpired,       // token or session expired
  kRevoked,       // session already revoked
  kReuseRevoked,  // token was already spent: the session is now revoked
};

struct RotateResult {
  RotateOutcome outcome = RotateOutcome::kUnknown;
  SessionRecord session;  // set for every outcome but kUnknown
};

// Device sessions and their refresh-token chains. Thread-safe.
class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // NOT_FOUND for an unknown user; INVALID_ARGUMENT for a device_name over
  // 128 characters or a refresh_token_hash that is neither empty nor 32
  // bytes; ALREADY_EXISTS if the refresh token hash is already stored.
  virtual absl::StatusOr<SessionRecord> CreateSession(
      const NewSession& session) = 0;
  virtual absl::StatusOr<SessionRecord> GetSession(uint64_t session_id) = 0;
  // In one transaction: finds old_hash (locking it), and if it is unspent
  // and its session live, marks it spent, stores new_hash with
  // new_expires_at, extends the session to new_expires_at and sets
  // last_used_at = now. A spent token revokes the session
  // (kReuseRevoked, reason kRefreshReuse). Checked in this order: unknown
  // token, revoked session, spent token, expired token or session (token
  // or session expires_at <= now). ALREADY_EXISTS (nothing changed) if
  // new_hash is already stored; INVALID_ARGUMENT unless new_hash is 32 bytes.
  virtual absl::StatusOr<RotateResult> RotateRefreshToken(
      const std::string& old_hash, const std::string& new_hash,
      absl::Time new_expires_at, absl::Time now) = 0;
  // Revokes one session of user_id; NOT_FOUND if it is not theirs. Revoking
  // an already revoked session is OK and keeps the first time.
  virtual absl::StatusOr<RevokedSessionRecord> RevokeSession(
      uint64_t user_id, uint64_t session_id, RevokeReason reason,
      absl::Time now) = 0;
  // Revokes every live (unrevoked, unexpired at `now`) session of the user;
  // returns those it revoked, ascending by id.
  virtual absl::StatusOr<std::vector<RevokedSessionRecord>> RevokeAllSessions(
      uint64_t user_id, RevokeReason reason, absl::Time now) = 0;
  // Live (unrevoked, unexpired at `now`) sessions, newest first (by
  // created_at, then id).
  virtual absl::StatusOr<std::vector<SessionRecord>> ListLiveSessions(
      uint64_t user_id, absl::Time now) = 0;
  // Sessions revoked at or after `since`, oldest first (by revoked_at, then
  // id; revocation snapshot for WatchRevocations).
  virtual absl::StatusOr<std::vector<RevokedSessionRecord>> ListRevokedSince(
      absl::Time since) = 0;
};

}  // namespace im::storage

#endif  // IM_STORAGE_SESSION_STORE_H_
