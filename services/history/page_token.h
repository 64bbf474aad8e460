#ifndef IM_SERVICES_HISTORY_PAGE_TOKEN_H_
#define IM_SERVICES_HISTORY_PAGE_TOKEN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// Opaque page tokens of ListConversations and Sync: unpadded base64url of a
// fixed binary layout (format version, token kind, big-endian fields). The
// kind byte keeps a token of one RPC from being accepted by the other.
// Decoding is strict: anything but the exact canonical encoding of a
// current-version token is INVALID_ARGUMENT. Tokens carry only a position,
// never a grant: every page is still bounded to the caller's memberships.

namespace im::history {

// Where a ListConversations page continues: after this row in
// (last_activity_at DESC, conversation_id DESC) order.
struct ConversationListPosition {
  absl::Time last_activity_at;  // whole microseconds
  uint64_t conversation_id = 0;
};

std::string EncodeConversationListToken(const ConversationListPosition& pos);
absl::StatusOr<ConversationListPosition> DecodeConversationListToken(
    absl::string_view token);

// Where a Sync page continues: after this conversation id.
std::string EncodeSyncToken(uint64_t after_conversation_id);
absl::StatusOr<uint64_t> DecodeSyncToken(absl::string_view token);

}  // namespace im::history

#endif  // IM_SERVICES_HISTORY_PAGE_TOKEN_H_
