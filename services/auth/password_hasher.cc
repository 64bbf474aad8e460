#include "services/auth/password_hasher.h"

#include <sodium.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace im::auth {
namespace {

// crypto_pwhash_str_verify reads a NUL-terminated string of at most
// crypto_pwhash_STRBYTES bytes.
bool IsPlausibleEncodedHash(absl::string_view encoded) {
  return !encoded.empty() && encoded.size() < crypto_pwhash_STRBYTES &&
         encoded.find('\0') == absl::string_view::npos &&
         encoded.substr(0, 10) == "$argon2id$";
}

}  // namespace

absl::StatusOr<std::unique_ptr<PasswordHasher>> PasswordHasher::Create(
    const Options& options) {
  if (sodium_init() < 0) return absl::InternalError("libsodium init failed");
  if (options.opslimit < crypto_pwhash_OPSLIMIT_MIN ||
      options.opslimit > crypto_pwhash_OPSLIMIT_MAX ||
      options.memlimit_bytes < crypto_pwhash_MEMLIMIT_MIN ||
      options.memlimit_bytes > crypto_pwhash_MEMLIMIT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "argon2id limits out of range: opslimit ", options.opslimit,
        ", memlimit ", options.memlimit_bytes, " bytes"));
  }
  unsigned char random_password[32];
  randombytes_buf(random_password, sizeof(random_password));
  char encoded[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(
          encoded, reinterpret_cast<const char*>(random_password),
          sizeof(random_password), options.opslimit, options.memlimit_bytes,
          crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::ResourceExhaustedError(
        "argon2id: cannot allocate the configured memory");
  }
  return std::unique_ptr<PasswordHasher>(
      new PasswordHasher(options, std::string(encoded)));
}

absl::StatusOr<std::string> PasswordHasher::Hash(
    absl::string_view password) const {
  char encoded[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(encoded, password.data(), password.size(),
                            options_.opslimit, options_.memlimit_bytes,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::ResourceExhaustedError(
        "password hashing ran out of memory; retry later");
  }
  return std::string(encoded);
}

bool PasswordHasher::Verify(absl::string_view encoded_hash,
                            absl::string_view password) const {
  const bool plausible = IsPlausibleEncodedHash(encoded_hash);
  // Copy into a NUL-terminated buffer: libsodium reads a C string.
  char stored[crypto_pwhash_STRBYTES] = {};
  const absl::string_view source = plausible ? encoded_hash : dummy_hash_;
  source.copy(stored, sizeof(stored) - 1);
  const bool match =
      crypto_pwhash_str_verify(stored, password.data(), password.size()) == 0;
  return plausible && match;
}

bool PasswordHasher::NeedsRehash(absl::string_view encoded_hash) const {
  if (!IsPlausibleEncodedHash(encoded_hash)) return true;
  char stored[crypto_pwhash_STRBYTES] = {};
  encoded_hash.copy(stored, sizeof(stored) - 1);
  return crypto_pwhash_str_needs_rehash(stored, options_.opslimit,
                                        options_.memlimit_bytes) != 0;
}

}  // namespace im::auth
