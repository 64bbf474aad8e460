#include "storage/log_entry.h"

#include <utility>

#include "storage/column_limits.h"

namespace im::storage {

::google::protobuf::Timestamp ToProtoTimestamp(absl::Time t) {
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  ::google::protobuf::Timestamp ts;
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rest * 1000));
  return ts;
}

absl::Time FromProtoTimestamp(const ::google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

Entry MakeMessageEntry(const AppendRequest& request, uint64_t seq,
                       absl::Time sent_at) {
  Entry entry;
  entry.set_conversation_id(request.conversation_id);
  entry.set_seq(seq);
  entry.set_sender_id(request.sender_id);
  entry.set_client_msg_id(request.client_msg_id);
  *entry.mutable_sent_at() = ToProtoTimestamp(StoredTime(sent_at));
  *entry.mutable_message() = request.message;
  return entry;
}

Entry MakeMemberEventEntry(uint64_t conversation_id, uint64_t seq,
                           uint64_t actor, std::string client_msg_id,
                           absl::Time sent_at, MemberEvent event) {
  Entry entry;
  entry.set_conversation_id(conversation_id);
  entry.set_seq(seq);
  entry.set_sender_id(actor);
  entry.set_client_msg_id(std::move(client_msg_id));
  *entry.mutable_sent_at() = ToProtoTimestamp(StoredTime(sent_at));
  *entry.mutable_member_event() = std::move(event);
  return entry;
}

}  // namespace im::storage
