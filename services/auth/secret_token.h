#ifndef IM_SERVICES_AUTH_SECRET_TOKEN_H_
#define IM_SERVICES_AUTH_SECRET_TOKEN_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace im::auth {

// Bearer secrets the server stores only hashed: refresh tokens and service
// account API keys. A secret is `<prefix><base64url of 32 random bytes>`;
// the prefix tells a leaked string's kind apart (and secret scanners can
// match it). 256 random bits cannot be guessed, so SHA-256 (not a slow
// password hash) is enough to keep a database dump from yielding usable
// secrets.
inline constexpr absl::string_view kRefreshTokenPrefix = "imr_";
inline constexpr absl::string_view kApiKeyPrefix = "imk_";

struct IssuedSecret {
  std::string secret;  // handed to the client once
  std::string hash;    // SHA-256 of the random bytes (32 raw bytes), stored
};

// A fresh secret with `prefix`.
IssuedSecret IssueSecret(absl::string_view prefix);

// The stored hash for `secret`, or nullopt when it is not `prefix` followed
// by exactly 43 base64url characters encoding 32 bytes.
std::optional<std::string> HashOfSecret(absl::string_view prefix,
                                        absl::string_view secret);

// What is shown of an API key after creation: its first 12 characters
// ("imk_" and 48 of its 256 bits).
std::string DisplayPrefix(absl::string_view secret);

}  // namespace im::auth

#endif  // IM_SERVICES_AUTH_SECRET_TOKEN_H_
