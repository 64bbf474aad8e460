#include "services/common/conversation_proto.h"

#include "services/common/proto_time.h"

namespace im {

message::v1::Conversation ConversationProto(
    const storage::ConversationRecord& record, uint64_t viewer_id) {
  message::v1::Conversation out;
  out.set_conversation_id(record.id);
  out.set_kind(record.kind);
  out.set_title(record.title);
  SetProtoTime(record.created_at, out.mutable_created_at());
  out.set_last_seq(record.last_seq);
  SetProtoTime(record.last_activity_at, out.mutable_last_activity_at());
  out.set_member_count(record.member_count);
  if (record.kind == message::v1::CONVERSATION_KIND_DIRECT) {
    out.set_peer_user_id(viewer_id == record.direct_user_a
                             ? record.direct_user_b
                             : record.direct_user_a);
  }
  return out;
}

message::v1::Member MemberProto(const storage::MemberRecord& record,
                                uint64_t read_seq) {
  message::v1::Member out;
  out.set_user_id(record.user_id);
  out.set_role(record.role);
  out.set_joined_seq(record.joined_seq);
  out.set_read_seq(read_seq);
  SetProtoTime(record.joined_at, out.mutable_joined_at());
  return out;
}

}  // namespace im
