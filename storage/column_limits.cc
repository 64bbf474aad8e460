#include "storage/column_limits.h"

#include "absl/strings/str_cat.h"

namespace im::storage {
namespace {

absl::Status CheckText(absl::string_view field, absl::string_view value,
                       size_t min_chars, size_t max_chars) {
  if (!IsValidUtf8(value)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
  }
  const size_t chars = Utf8CharCount(value);
  if (chars < min_chars || chars > max_chars) {
    return absl::InvalidArgumentError(
        min_chars == 0
            ? absl::StrCat(field, " longer than ", max_chars, " characters")
            : absl::StrCat(field, " must have ", min_chars, " to ", max_chars,
                           " characters"));
  }
  return absl::OkStatus();
}

bool IsPrintableAscii(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    uint32_t code_point;
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
      code_point = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      code_point = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      code_point = c & 0x07;
    } else {
      return false;  // continuation byte, overlong lead 0xc0/0xc1, or > 0xf4
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      code_point = (code_point << 6) | (p[i] & 0x3f);
    }
    if ((extra == 2 && code_point < 0x800) ||
        (extra == 3 && (code_point < 0x10000 || code_point > 0x10ffff)) ||
        (code_point >= 0xd800 && code_point <= 0xdfff)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

size_t Utf8CharCount(absl::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++count;
  }
  return count;
}

bool IsValidClientMsgId(absl::string_view client_msg_id) {
  if (client_msg_id.empty() || client_msg_id.size() > kMaxClientMsgIdBytes) {
    return false;
  }
  for (char c : client_msg_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::Time StoredTime(absl::Time t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

absl::Status ValidateUsernameNorm(absl::string_view username_norm) {
  if (username_norm.empty() || username_norm.size() > kMaxUsernameChars) {
    return absl::InvalidArgumentError(absl::StrCat(
        "username_norm must have 1 to ", kMaxUsernameChars, " characters"));
  }
  for (char c : username_norm) {
    if (c < 0x20 || c > 0x7e || (c >= 'A' && c <= 'Z')) {
      return absl::InvalidArgumentError(
          "username_norm must be printable ASCII without upper case");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateNewUser(const NewUser& user) {
  if (auto s = CheckText("username", user.username, 1, kMaxUsernameChars);
      !s.ok()) {
    return s;
  }
  if (auto s = ValidateUsernameNorm(user.username_norm); !s.ok()) return s;
  if (auto s = CheckText("display_name", user.display_name, 0,
                         kMaxDisplayNameChars);
      !s.ok()) {
    return s;
  }
  return CheckText("password_hash", user.password_hash, 0,
                   kMaxPasswordHashChars);
}

absl::Status ValidateStatusText(absl::string_view text) {
  return CheckText("status_text", text, 0, kMaxStatusTextChars);
}

absl::Status ValidateTokenHash(absl::string_view field, absl::string_view hash) {
  if (hash.size() != kTokenHashBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be ", kTokenHashBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateNewServiceAccount(const NewServiceAccount& account) {
  if (auto s = CheckText("name", account.name, 1, kMaxUsernameChars);
      !s.ok()) {
    return s;
  }
  if (auto s = ValidateUsernameNorm(account.name_norm); !s.ok()) return s;
  if (auto s = CheckText("description", account.description, 0,
                         kMaxServiceDescriptionChars);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckText("key_prefix", account.key_prefix, 0,
                         kMaxKeyPrefixChars);
      !s.ok()) {
    return s;
  }
  return ValidateTokenHash("api_key_hash", account.api_key_hash);
}

absl::Status ValidateNewSession(const NewSession& session) {
  if (auto s = CheckText("device_name", session.device_name, 0,
                         kMaxDeviceNameChars);
      !s.ok()) {
    return s;
  }
  if (session.device_kind < 0 || session.device_kind > 255) {
    return absl::InvalidArgumentError("device_kind out of range");
  }
  if (!session.refresh_token_hash.empty()) {
    return ValidateTokenHash("refresh_token_hash", session.refresh_token_hash);
  }
  return absl::OkStatus();
}

absl::Status ValidateTitle(absl::string_view title) {
  return CheckText("title", title, 0, kMaxTitleChars);
}

absl::Status ValidateAppend(const AppendRequest& request) {
  if (!IsValidClientMsgId(request.client_msg_id)) {
    return absl::InvalidArgumentError(
        "client_msg_id must be 1-64 bytes of [A-Za-z0-9._:-]");
  }
  const std::string& text = request.message.text();
  if (text.size() > kMaxTextBytes) {
    return absl::InvalidArgumentError("text too long");
  }
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError("text is not valid UTF-8");
  }
  const std::string& content_type = request.message.content_type();
  if (content_type.size() > kMaxContentTypeBytes ||
      !IsPrintableAscii(content_type)) {
    return absl::InvalidArgumentError(
        "content_type must be at most 64 bytes of printable ASCII");
  }
  for (const auto& [key, value] : request.message.metadata()) {
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return absl::InvalidArgumentError("metadata is not valid UTF-8");
    }
  }
  // The whole message bounds its metadata's serialized size from above.
  if (request.message.ByteSizeLong() > kMaxExtraBytes) {
    ::im::message::v1::Message metadata_only;
    *metadata_only.mutable_metadata() = request.message.metadata();
    if (metadata_only.ByteSizeLong() > kMaxExtraBytes) {
      return absl::InvalidArgumentError("metadata too large");
    }
  }
  return absl::OkStatus();
}

}  // namespace im::storage
