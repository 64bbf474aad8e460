#ifndef IM_SERVICES_COMMON_ACCESS_TOKEN_H_
#define IM_SERVICES_COMMON_ACCESS_TOKEN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "im/auth/v1/auth.pb.h"

namespace im {

// Who a request speaks for, as proven by its access token.
struct Caller {
  uint64_t user_id = 0;     // 0 for ROLE_INTERNAL
  uint64_t session_id = 0;  // 0 for ROLE_INTERNAL
  auth::v1::Role role = auth::v1::ROLE_UNSPECIFIED;
  absl::Time expires_at;

  bool is_internal() const { return role == auth::v1::ROLE_INTERNAL; }
  bool is_service() const { return role == auth::v1::ROLE_SERVICE; }
  bool is_admin() const { return role == auth::v1::ROLE_ADMIN; }
};

// One HMAC key. Several can be loaded so keys rotate without downtime: the
// first signs, all verify.
struct TokenKey {
  uint8_t id = 0;      // 1..255, carried in the token
  std::string secret;  // at least 32 bytes
};

// Mints and verifies access tokens: "v1.<payload>.<mac>" where payload is
// base64url of (key id, role, user id, session id, issued, expires) and mac
// is base64url HMAC-SHA256 over "v1.<payload>". Verification needs no
// database; revocation is checked separately (RevocationSet). Thread-safe
// (immutable after Create).
class TokenCodec {
 public:
  // INVALID_ARGUMENT for no keys, short secrets, duplicate or zero ids.
  static absl::StatusOr<std::unique_ptr<TokenCodec>> Create(
      std::vector<TokenKey> keys);

  // Reads a key file: one key per line, "<id> <base64 secret>", '#' starts
  // a comment; the first key signs. NOT_FOUND / INVALID_ARGUMENT on a
  // missing or malformed file.
  static absl::StatusOr<std::unique_ptr<TokenCodec>> FromKeyFile(
      const std::string& path);

  // A fresh random key file body (for scripts and tests).
  static std::string GenerateKeyFile(uint8_t key_id);

  std::string Mint(const Caller& caller, absl::Time issued_at) const;

  // UNAUTHENTICATED for malformed tokens, unknown keys, bad MACs and
  // expired tokens (at `now`). The message says which, without echoing the
  // token.
  absl::StatusOr<Caller> Verify(absl::string_view token, absl::Time now) const;

 private:
  explicit TokenCodec(std::vector<TokenKey> keys) : keys_(std::move(keys)) {}

  const TokenKey* FindKey(uint8_t id) const;

  std::vector<TokenKey> keys_;
};

}  // namespace im

#endif  // IM_SERVICES_COMMON_ACCESS_TOKEN_H_
