#ifndef IM_CLIENTS_CPP_CHAT_EVENTS_H_
#define IM_CLIENTS_CPP_CHAT_EVENTS_H_

#include <cstdint>
#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "im/message/v1/message.pb.h"

namespace im::client {

// Where a ChatSession stands.
enum class ChatState {
  // Not started, or stopped.
  kStopped,
  // A stream is open and replaying what was missed (before Ready).
  kConnecting,
  // Replay done; entries arrive live.
  kLive,
  // The stream ended; a new one opens after a backoff.
  kDisconnected,
  // The session's tokens cannot be renewed: nothing more happens until the
  // application signs in again and starts a new session.
  kSessionLost,
};

const char* ChatStateName(ChatState state);

// The fate of one send. A send is pending until the server acknowledges it
// (durably stored, with its seq) or refuses it with a non-retryable code;
// transient failures and reconnects only delay it (it is sent again with the
// same client_msg_id, so it is stored once).
struct SendOutcome {
  enum class State { kPending, kAcked, kFailed };
  State state = State::kPending;
  std::string client_msg_id;
  uint64_t conversation_id = 0;
  // kAcked: the entry's seq and the server's commit time.
  uint64_t seq = 0;
  absl::Time sent_at;
  // kAcked: the server had stored this client_msg_id before (an earlier
  // attempt's ack was lost); seq and sent_at are the original ones.
  bool duplicate = false;
  // kFailed: why (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ...).
  absl::Status status;
  // How many times the send was written to a stream.
  int attempts = 0;
};

// The stream's state changed.
struct ConnectionChange {
  ChatState state = ChatState::kStopped;
  // kDisconnected / kSessionLost: how the stream or the session ended.
  absl::Status status;
  // kDisconnected: the wait before the next attempt.
  absl::Duration retry_in;
};

// A Read or Typing frame the server refused.
struct RequestError {
  uint64_t request_id = 0;
  uint64_t conversation_id = 0;
  absl::Status status;
};

// What a ChatSession delivers. Entries come exactly once per
// (conversation, seq), in seq order per conversation.
using ChatEvent = std::variant<::im::message::v1::Entry, SendOutcome,
                               ::im::message::v1::Receipt,
                               ::im::message::v1::Typing, ConnectionChange,
                               RequestError>;

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_CHAT_EVENTS_H_
