#ifndef IM_SERVICES_AUTH_USERNAME_H_
#define IM_SERVICES_AUTH_USERNAME_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace im::auth {

inline constexpr size_t kMinUsernameChars = 3;
inline constexpr size_t kMaxUsernameChars = 32;

// Usernames and service account names: 3 to 32 ASCII letters, digits, '_',
// '.' or '-', starting with a letter or digit. INVALID_ARGUMENT naming
// `field` otherwise.
absl::Status ValidateUsername(absl::string_view field,
                              absl::string_view username);

// The uniqueness key: the username lower-cased (ASCII only, so it is the
// same in every locale and in MySQL's ascii_bin column).
std::string NormalizeUsername(absl::string_view username);

}  // namespace im::auth

#endif  // IM_SERVICES_AUTH_USERNAME_H_
