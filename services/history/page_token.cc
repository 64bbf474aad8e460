#include "services/history/page_token.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"

namespace im::history {
namespace {

constexpr uint8_t kFormatVersion = 1;
constexpr uint8_t kConversationListKind = 1;
constexpr uint8_t kSyncKind = 2;
// version, kind, then the fields.
constexpr size_t kHeaderBytes = 2;
constexpr size_t kConversationListBytes = kHeaderBytes + 8 + 8;
constexpr size_t kSyncBytes = kHeaderBytes + 8;

void AppendBigEndian(uint64_t value, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

uint64_t ReadBigEndian(absl::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return value;
}

std::string Seal(std::string raw) { return absl::WebSafeBase64Escape(raw); }

absl::Status MalformedToken() {
  return absl::InvalidArgumentError("malformed page_token");
}

// The raw bytes of a token of `kind` and `size`, or INVALID_ARGUMENT.
absl::StatusOr<std::string> Open(absl::string_view token, uint8_t kind,
                                 size_t size) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || raw.size() != size ||
      static_cast<uint8_t>(raw[0]) != kFormatVersion ||
      static_cast<uint8_t>(raw[1]) != kind ||
      // Only the canonical spelling (no padding, no stray bits) is a token.
      Seal(raw) != token) {
    return MalformedToken();
  }
  return raw;
}

std::string Header(uint8_t kind) {
  std::string raw;
  raw.push_back(static_cast<char>(kFormatVersion));
  raw.push_back(static_cast<char>(kind));
  return raw;
}

}  // namespace

std::string EncodeConversationListToken(const ConversationListPosition& pos) {
  std::string raw = Header(kConversationListKind);
  AppendBigEndian(static_cast<uint64_t>(absl::ToUnixMicros(pos.last_activity_at)),
                  &raw);
  AppendBigEndian(pos.conversation_id, &raw);
  return Seal(raw);
}

absl::StatusOr<ConversationListPosition> DecodeConversationListToken(
    absl::string_view token) {
  absl::StatusOr<std::string> raw =
      Open(token, kConversationListKind, kConversationListBytes);
  if (!raw.ok()) return raw.status();
  ConversationListPosition pos;
  pos.last_activity_at = absl::FromUnixMicros(
      static_cast<int64_t>(ReadBigEndian(absl::string_view(*raw).substr(2))));
  pos.conversation_id = ReadBigEndian(absl::string_view(*raw).substr(10));
  if (pos.conversation_id == 0) return MalformedToken();
  return pos;
}

std::string EncodeSyncToken(uint64_t after_conversation_id) {
  std::string raw = Header(kSyncKind);
  AppendBigEndian(after_conversation_id, &raw);
  return Seal(raw);
}

absl::StatusOr<uint64_t> DecodeSyncToken(absl::string_view token) {
  absl::StatusOr<std::string> raw = Open(token, kSyncKind, kSyncBytes);
  if (!raw.ok()) return raw.status();
  const uint64_t after = ReadBigEndian(absl::string_view(*raw).substr(2));
  if (after == 0) return MalformedToken();
  return after;
}

}  // namespace im::history
