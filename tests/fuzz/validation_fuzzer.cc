// Fuzz target for the validation layers that stand between raw client bytes
// and storage, each checked against an independent statement of its rule:
//   byte 0 % 4 == 0: history page tokens: a token that decodes is the
//                    canonical encoding of what it decodes to;
//   byte 0 % 4 == 1: strict UTF-8 (services/common/text) against a
//                    reference decoder written from RFC 3629, and the
//                    code point count;
//   byte 0 % 4 == 2: ValidateMessage: a message it accepts obeys every
//                    documented bound of im.message.v1.Message;
//   byte 0 % 4 == 3: ValidateClientMsgId: accepted exactly when 1-64 bytes
//                    of [A-Za-z0-9._:-].
// Every refusal must be INVALID_ARGUMENT.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "im/message/v1/types.pb.h"
#include "services/common/text.h"
#include "services/history/page_token.h"
#include "services/message/message_validation.h"

namespace {

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "CONTRACT VIOLATION: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

void ExpectRefusalCode(const absl::Status& status, const char* what) {
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) {
    Violation(what);
  }
}

// Code points of `text` when it is strict UTF-8 (RFC 3629 section 4).
std::optional<size_t> ReferenceUtf8Length(absl::string_view text) {
  size_t count = 0;
  size_t i = 0;
  auto cont = [&](size_t at) {
    return at < text.size() &&
           (static_cast<uint8_t>(text[at]) & 0xC0) == 0x80;
  };
  while (i < text.size()) {
    const uint8_t b0 = static_cast<uint8_t>(text[i]);
    size_t length = 0;
    uint32_t code_point = 0;
    uint32_t min_code_point = 0;
    if (b0 < 0x80) {
      length = 1;
      code_point = b0;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      length = 2;
      code_point = b0 & 0x1F;
      min_code_point = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      length = 3;
      code_point = b0 & 0x0F;
      min_code_point = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      length = 4;
      code_point = b0 & 0x07;
      min_code_point = 0x10000;
    } else {
      return std::nullopt;
    }
    for (size_t k = 1; k < length; ++k) {
      if (!cont(i + k)) return std::nullopt;
      code_point = (code_point << 6) | (static_cast<uint8_t>(text[i + k]) & 0x3F);
    }
    if (code_point < min_code_point || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return std::nullopt;
    }
    i += length;
    ++count;
  }
  return count;
}

void FuzzPageTokens(absl::string_view token) {
  if (auto position = im::history::DecodeConversationListToken(token);
      position.ok()) {
    if (im::history::EncodeConversationListToken(*position) != token) {
      Violation("a ListConversations token decodes but is not canonical");
    }
  } else {
    ExpectRefusalCode(position.status(), "ListConversations token refusal");
  }
  if (auto after = im::history::DecodeSyncToken(token); after.ok()) {
    if (im::history::EncodeSyncToken(*after) != token) {
      Violation("a Sync token decodes but is not canonical");
    }
  } else {
    ExpectRefusalCode(after.status(), "Sync token refusal");
  }
}

void FuzzUtf8(absl::string_view text) {
  const std::optional<size_t> reference = ReferenceUtf8Length(text);
  if (im::IsValidUtf8(text) != reference.has_value()) {
    Violation("IsValidUtf8 disagrees with the RFC 3629 reference");
  }
  if (reference.has_value() && im::Utf8Length(text) != *reference) {
    Violation("Utf8Length disagrees with the reference count");
  }
  absl::Status label = im::ValidateLabel("label", text, 1, 64);
  ExpectRefusalCode(label, "ValidateLabel refusal");
  if (label.ok() && (!reference.has_value() || *reference < 1 ||
                     *reference > 64 || im::HasControlCharacters(text))) {
    Violation("ValidateLabel accepted a label outside its rule");
  }
}

// Pieces separated by 0xFF: text, content_type, then key/value pairs.
void FuzzMessage(absl::string_view bytes) {
  const std::vector<absl::string_view> pieces =
      absl::StrSplit(bytes, absl::ByChar('\xff'));
  im::message::v1::Message message;
  message.set_text(std::string(pieces[0]));
  if (pieces.size() > 1) message.set_content_type(std::string(pieces[1]));
  for (size_t i = 2; i + 1 < pieces.size(); i += 2) {
    (*message.mutable_metadata())[std::string(pieces[i])] =
        std::string(pieces[i + 1]);
  }
  const im::message::MessageLimits limits;
  const absl::Status status = im::message::ValidateMessage(limits, message);
  ExpectRefusalCode(status, "ValidateMessage refusal");
  if (!status.ok()) return;
  if (message.text().empty() && message.metadata().empty()) {
    Violation("accepted an empty message");
  }
  if (message.text().size() > limits.max_text_bytes ||
      !ReferenceUtf8Length(message.text()).has_value()) {
    Violation("accepted a text that is too long or not UTF-8");
  }
  if (message.content_type().size() > limits.max_content_type_bytes) {
    Violation("accepted a content_type that is too long");
  }
  for (char c : message.content_type()) {
    if (c < 0x20 || c > 0x7E) Violation("accepted a non-printable content_type");
  }
  if (message.metadata().size() > limits.max_metadata_entries) {
    Violation("accepted too many metadata entries");
  }
  size_t total = 0;
  for (const auto& [key, value] : message.metadata()) {
    if (key.empty() || key.size() > limits.max_metadata_key_bytes ||
        value.size() > limits.max_metadata_value_bytes ||
        !ReferenceUtf8Length(key).has_value() ||
        !ReferenceUtf8Length(value).has_value()) {
      Violation("accepted a metadata entry outside the bounds");
    }
    total += key.size() + value.size();
  }
  if (total > limits.max_metadata_total_bytes) {
    Violation("accepted metadata larger than the total bound");
  }
}

void FuzzClientMsgId(absl::string_view id) {
  bool expected = !id.empty() && id.size() <= 64;
  for (char c : id) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                         c == ':' || c == '-';
    expected = expected && allowed;
  }
  const absl::Status status = im::message::ValidateClientMsgId(id);
  ExpectRefusalCode(status, "ValidateClientMsgId refusal");
  if (status.ok() != expected) {
    Violation("ValidateClientMsgId disagrees with [A-Za-z0-9._:-]{1,64}");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data + 1),
                               size - 1);
  switch (data[0] % 4) {
    case 0:
      FuzzPageTokens(rest);
      break;
    case 1:
      FuzzUtf8(rest);
      break;
    case 2:
      FuzzMessage(rest);
      break;
    default:
      FuzzClientMsgId(rest);
      break;
  }
  return 0;
}
