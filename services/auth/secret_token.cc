#include "services/auth/secret_token.h"

#include <sodium.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace im::auth {
namespace {

constexpr size_t kSecretBytes = 32;
// base64url without padding of 32 bytes.
constexpr size_t kEncodedSecretChars = 43;
constexpr size_t kDisplayPrefixChars = 12;

std::string Sha256(absl::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest,
                     reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size());
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

IssuedSecret IssueSecret(absl::string_view prefix) {
  unsigned char random[kSecretBytes];
  randombytes_buf(random, sizeof(random));
  const absl::string_view bytes(reinterpret_cast<const char*>(random),
                                sizeof(random));
  IssuedSecret issued;
  issued.secret = absl::StrCat(prefix, absl::WebSafeBase64Escape(bytes));
  issued.hash = Sha256(bytes);
  sodium_memzero(random, sizeof(random));
  return issued;
}

std::optional<std::string> HashOfSecret(absl::string_view prefix,
                                        absl::string_view secret) {
  if (secret.size() != prefix.size() + kEncodedSecretChars ||
      secret.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  const absl::string_view encoded = secret.substr(prefix.size());
  for (char c : encoded) {
    if (!IsBase64UrlChar(c)) return std::nullopt;
  }
  std::string bytes;
  if (!absl::WebSafeBase64Unescape(encoded, &bytes) ||
      bytes.size() != kSecretBytes) {
    return std::nullopt;
  }
  return Sha256(bytes);
}

std::string DisplayPrefix(absl::string_view secret) {
  return std::string(secret.substr(0, kDisplayPrefixChars));
}

}  // namespace im::auth
