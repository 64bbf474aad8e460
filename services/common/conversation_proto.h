#ifndef IM_SERVICES_COMMON_CONVERSATION_PROTO_H_
#define IM_SERVICES_COMMON_CONVERSATION_PROTO_H_

#include <cstdint>

#include "im/message/v1/types.pb.h"
#include "storage/conversation_store.h"

// Store records as the API shows them, shared by the message and history
// services so both describe a conversation the same way.

namespace im {

// The conversation as `viewer_id` sees it: peer_user_id is the other member
// of a direct conversation (0 for groups).
message::v1::Conversation ConversationProto(
    const storage::ConversationRecord& record, uint64_t viewer_id);

// A member with their read marker.
message::v1::Member MemberProto(const storage::MemberRecord& record,
                                uint64_t read_seq);

}  // namespace im

#endif  // IM_SERVICES_COMMON_CONVERSATION_PROTO_H_
