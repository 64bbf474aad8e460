#ifndef IM_STORAGE_COLUMN_LIMITS_H_
#define IM_STORAGE_COLUMN_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/conversation_store.h"
#include "storage/session_store.h"
#include "storage/user_store.h"

// What the schema (storage/migrations) can hold. Every store checks inputs
// here first, so the MySQL stores and the fakes reject exactly the same
// values with INVALID_ARGUMENT instead of MySQL failing a whole statement
// (strict sql_mode) or a fake accepting what MySQL would not.

namespace im::storage {

// Column sizes in characters (VARCHAR(n) of utf8mb4 counts code points) or,
// for binary and ASCII columns, bytes.
inline constexpr size_t kMaxUsernameChars = 64;
inline constexpr size_t kMaxDisplayNameChars = 128;
inline constexpr size_t kMaxPasswordHashChars = 255;
inline constexpr size_t kMaxStatusTextChars = 255;
inline constexpr size_t kMaxDeviceNameChars = 128;
inline constexpr size_t kMaxServiceDescriptionChars = 512;
inline constexpr size_t kMaxKeyPrefixChars = 32;
inline constexpr size_t kTokenHashBytes = 32;  // SHA-256
inline constexpr size_t kMaxTitleChars = 255;
inline constexpr size_t kMaxClientMsgIdBytes = 64;
inline constexpr size_t kMaxContentTypeBytes = 64;
inline constexpr size_t kMaxTextBytes = 16 * 1024 * 1024 - 1;   // MEDIUMTEXT
inline constexpr size_t kMaxExtraBytes = 16 * 1024 * 1024 - 1;  // MEDIUMBLOB

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(absl::string_view text);

// Code points in valid UTF-8 text.
size_t Utf8CharCount(absl::string_view text);

// 1-64 bytes of [A-Za-z0-9._:-] (the API's rule for client_msg_id).
bool IsValidClientMsgId(absl::string_view client_msg_id);

// The time as stored: whole microseconds (the schema's *_us columns),
// rounded toward the past.
absl::Time StoredTime(absl::Time t);

absl::Status ValidateNewUser(const NewUser& user);
absl::Status ValidateUsernameNorm(absl::string_view username_norm);
absl::Status ValidateStatusText(absl::string_view text);
absl::Status ValidateNewServiceAccount(const NewServiceAccount& account);
absl::Status ValidateTokenHash(absl::string_view field, absl::string_view hash);
absl::Status ValidateNewSession(const NewSession& session);
absl::Status ValidateTitle(absl::string_view title);
// client_msg_id, text, content_type and metadata of one append. Metadata
// travels serialized in the extra column, and protobuf refuses to parse a
// string that is not UTF-8, so keys and values are checked too.
absl::Status ValidateAppend(const AppendRequest& request);

}  // namespace im::storage

#endif  // IM_STORAGE_COLUMN_LIMITS_H_
