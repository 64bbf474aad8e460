#ifndef IM_STORAGE_LOG_ENTRY_H_
#define IM_STORAGE_LOG_ENTRY_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "im/message/v1/types.pb.h"
#include "storage/conversation_store.h"

// Building log entries the same way in every store.

namespace im::storage {

using ::im::message::v1::MemberEvent;

::google::protobuf::Timestamp ToProtoTimestamp(absl::Time t);
absl::Time FromProtoTimestamp(const ::google::protobuf::Timestamp& t);

// The entry an append stores at `seq`.
Entry MakeMessageEntry(const AppendRequest& request, uint64_t seq,
                       absl::Time sent_at);

// A member-event entry written by `actor`.
Entry MakeMemberEventEntry(uint64_t conversation_id, uint64_t seq,
                           uint64_t actor, std::string client_msg_id,
                           absl::Time sent_at, MemberEvent event);

}  // namespace im::storage

#endif  // IM_STORAGE_LOG_ENTRY_H_
