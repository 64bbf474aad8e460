#include "services/auth/username.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace im::auth {

absl::Status ValidateUsername(absl::string_view field,
                              absl::string_view username) {
  if (username.size() < kMinUsernameChars ||
      username.size() > kMaxUsernameChars) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be ", kMinUsernameChars, " to ",
                     kMaxUsernameChars, " characters"));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(username[0]))) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must start with a letter or digit"));
  }
  for (char c : username) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!(absl::ascii_isalnum(u) || c == '_' || c == '.' || c == '-')) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " may only hold ASCII letters, digits, '_', '.' and '-'"));
    }
  }
  return absl::OkStatus();
}

std::string NormalizeUsername(absl::string_view username) {
  return absl::AsciiStrToLower(username);
}

}  // namespace im::auth
