#ifndef IM_STORAGE_USER_STORE_H_
#define IM_STORAGE_USER_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace im::storage {

enum class UserKind : uint8_t { kPerson = 1, kService = 2 };

struct UserRecord {
  uint64_t id = 0;
  std::string username;       // as registered
  std::string username_norm;  // lower-cased, the unique key
  std::string display_name;
  std::string password_hash;  // argon2id encoded; empty for service accounts
  UserKind kind = UserKind::kPerson;
  bool is_admin = false;
  std::string status_text;
  absl::Time created_at;
  std::optional<absl::Time> last_seen_at;
};

struct NewUser {
  std::string username;
  std::string username_norm;
  std::string display_name;
  std::string password_hash;
  bool is_admin = false;
  absl::Time created_at;
};

struct ServiceAccountRecord {
  uint64_t user_id = 0;
  std::string name;  // the users row's username
  std::string description;
  std::string key_prefix;
  uint64_t created_by = 0;
  absl::Time created_at;
  std::optional<absl::Time> revoked_at;
};

struct NewServiceAccount {
  std::string name;
  std::string name_norm;
  std::string description;
  std::string api_key_hash;  // 32 raw bytes (SHA-256)
  std::string key_prefix;
  uint64_t created_by = 0;
  absl::Time created_at;
};

// Accounts: people and service accounts, last-seen times and status text.
// Thread-safe. Errors: ALREADY_EXISTS for a taken username_norm,
// NOT_FOUND for unknown ids, UNAVAILABLE when the database is unreachable,
// INVALID_ARGUMENT for values the schema cannot hold (username and
// username_norm 1-64 characters, username_norm ASCII without upper case,
// display_name up to 128 characters, status_text up to 255, password_hash
// up to 255, hashes exactly 32 bytes, service description up to 512,
// key_prefix up to 32; text valid UTF-8).
class UserStore {
 public:
  virtual ~UserStore() = default;

  virtual absl::StatusOr<UserRecord> CreateUser(const NewUser& user) = 0;
  virtual absl::StatusOr<UserRecord> GetUserByUsername(
      const std::string& username_norm) = 0;
  virtual absl::StatusOr<UserRecord> GetUser(uint64_t user_id) = 0;
  // Unknown ids and names are left out of the result; ascending by id.
  virtual absl::StatusOr<std::vector<UserRecord>> GetUsers(
      absl::Span<const uint64_t> user_ids) = 0;
  virtual absl::StatusOr<std::vector<UserRecord>> GetUsersByUsername(
      absl::Span<const std::string> usernames_norm) = 0;
  virtual absl::Status SetAdmin(uint64_t user_id, bool is_admin) = 0;
  virtual absl::Status SetStatusText(uint64_t user_id,
                                     const std::string& text) = 0;
  // Writes many users' last-seen times in one statement (presence flushes
  // them in batches). A time older than the stored one does not move it
  // back. Unknown ids are ignored.
  virtual absl::Status UpdateLastSeen(
      absl::Span<const std::pair<uint64_t, absl::Time>> last_seen) = 0;

  // Creates the users row (kind service) and the service_accounts row in
  // one transaction.
  // ALREADY_EXISTS if name_norm or api_key_hash is taken.
  virtual absl::StatusOr<ServiceAccountRecord> CreateServiceAccount(
      const NewServiceAccount& account) = 0;
  // Ascending by user id.
  virtual absl::StatusOr<std::vector<ServiceAccountRecord>>
  ListServiceAccounts() = 0;
  // NOT_FOUND unless the key hash belongs to a service account; a revoked
  // one is returned with revoked_at set.
  virtual absl::StatusOr<ServiceAccountRecord> FindServiceAccountByKeyHash(
      const std::string& api_key_hash) = 0;
  // Sets revoked_at (idempotent: an already revoked account keeps its time).
  virtual absl::StatusOr<ServiceAccountRecord> RevokeServiceAccount(
      uint64_t user_id, absl::Time now) = 0;
};

}  // namespace im::storage

#endif  // IM_STORAGE_USER_STORE_H_
