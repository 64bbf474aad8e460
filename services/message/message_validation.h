#ifndef IM_SERVICES_MESSAGE_MESSAGE_VALIDATION_H_
#define IM_SERVICES_MESSAGE_MESSAGE_VALIDATION_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "im/message/v1/types.pb.h"

namespace im::message {

// Bounds on what a send may carry (see im.message.v1.Message).
struct MessageLimits {
  size_t max_text_bytes = 8 * 1024;
  size_t max_content_type_bytes = 64;
  size_t max_metadata_entries = 16;
  size_t max_metadata_key_bytes = 64;
  size_t max_metadata_value_bytes = 1024;
  // Sum of all keys and values.
  size_t max_metadata_total_bytes = 4 * 1024;
};

// INVALID_ARGUMENT unless 1-64 bytes of [A-Za-z0-9._:-].
absl::Status ValidateClientMsgId(absl::string_view client_msg_id);

// INVALID_ARGUMENT naming the first problem: empty message, text too long or
// not strict UTF-8, content_type not printable ASCII or too long, metadata
// with too many entries, bad keys or values, or too large in total.
absl::Status ValidateMessage(const MessageLimits& limits,
                             const ::im::message::v1::Message& message);

// Everything a send is checked for before it is queued: the conversation
// id, the client_msg_id and the message.
absl::Status ValidateSend(const MessageLimits& limits, uint64_t conversation_id,
                          absl::string_view client_msg_id,
                          const ::im::message::v1::Message& message);

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_MESSAGE_VALIDATION_H_
