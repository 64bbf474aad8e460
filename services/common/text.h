#ifndef IM_SERVICES_COMMON_TEXT_H_
#define IM_SERVICES_COMMON_TEXT_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace im {

// Strict UTF-8 (RFC 3629): rejects overlong forms, surrogates (U+D800..DFFF)
// and code points above U+10FFFF. Protobuf's own check is not enough:
// proto3 `string` parsing in C++ only logs invalid UTF-8 in some builds.
bool IsValidUtf8(absl::string_view text);

// Number of code points in valid UTF-8 text.
size_t Utf8Length(absl::string_view text);

// True if the text holds C0/C1 control characters or DEL (tab/newline
// included); for names and titles, not message bodies.
bool HasControlCharacters(absl::string_view text);

// Checks a single-line human label (display name, title, device name):
// valid UTF-8, no control characters, min_chars..max_chars code points.
// INVALID_ARGUMENT naming `field` otherwise.
absl::Status ValidateLabel(absl::string_view field, absl::string_view text,
                           size_t min_chars, size_t max_chars);

}  // namespace im

#endif  // IM_SERVICES_COMMON_TEXT_H_
