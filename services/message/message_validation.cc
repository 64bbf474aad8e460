#include "services/message/message_validation.h"

#include "absl/strings/str_cat.h"
#include "services/common/text.h"
#include "storage/column_limits.h"

namespace im::message {
absl::Status ValidateClientMsgId(absl::string_view client_msg_id) {
  if (!storage::IsValidClientMsgId(client_msg_id)) {
    return absl::InvalidArgumentError(
        "client_msg_id must be 1 to 64 bytes of A-Z a-z 0-9 . _ : -");
  }
  return absl::OkStatus();
}

absl::Status ValidateMessage(const MessageLimits& limits,
                             const ::im::message::v1::Message& message) {
  if (message.text().empty() && message.metadata().empty()) {
    return absl::InvalidArgumentError("message has neither text nor metadata");
  }
  if (message.text().size() > limits.max_text_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("message text is ", message.text().size(),
                     " bytes; the limit is ", limits.max_text_bytes));
  }
  if (!IsValidUtf8(message.text())) {
    return absl::InvalidArgumentError("message text is not valid UTF-8");
  }
  const std::string& content_type = message.content_type();
  if (content_type.size() > limits.max_content_type_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("content_type is longer than ",
                     limits.max_content_type_bytes, " bytes"));
  }
  for (char c : content_type) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "content_type must be printable ASCII");
    }
  }
  if (static_cast<size_t>(message.metadata_size()) >
      limits.max_metadata_entries) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata has ", message.metadata_size(),
                     " entries; the limit is ", limits.max_metadata_entries));
  }
  size_t total = 0;
  for (const auto& [key, value] : message.metadata()) {
    if (key.empty() || key.size() > limits.max_metadata_key_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metadata keys must be 1 to ", limits.max_metadata_key_bytes,
          " bytes"));
    }
    if (value.size() > limits.max_metadata_value_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metadata value of key \"", IsValidUtf8(key) ? key : "?",
          "\" is longer than ", limits.max_metadata_value_bytes, " bytes"));
    }
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          "metadata keys and values must be valid UTF-8");
    }
    total += key.size() + value.size();
  }
  if (total > limits.max_metadata_total_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata is ", total, " bytes in total; the limit is ",
                     limits.max_metadata_total_bytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateSend(const MessageLimits& limits, uint64_t conversation_id,
                          absl::string_view client_msg_id,
                          const ::im::message::v1::Message& message) {
  if (conversation_id == 0) {
    return absl::InvalidArgumentError("conversation_id is required");
  }
  if (absl::Status status = ValidateClientMsgId(client_msg_id); !status.ok()) {
    return status;
  }
  return ValidateMessage(limits, message);
}

}  // namespace im::message
