#ifndef IM_SERVICES_MESSAGE_RPC_HELPERS_H_
#define IM_SERVICES_MESSAGE_RPC_HELPERS_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "im/message/v1/message.pb.h"
#include "services/message/log_writer.h"
#include "services/message/shared_frame.h"

// Pieces of the message service's RPC edge shared by its unary handlers and
// stream reactors.

namespace im::message {

// NOT_FOUND "conversation not found": a missing conversation and one the
// caller is not a member of read exactly the same.
absl::Status ConversationNotFound();
// Any NOT_FOUND from storage becomes ConversationNotFound().
absl::Status HideMembership(const absl::Status& status);
// UNAVAILABLE: the node is draining.
absl::Status ShuttingDown();

// Parses a raw request; INVALID_ARGUMENT when it does not parse (protobuf
// refuses strings that are not valid UTF-8).
absl::Status ParseRequest(const grpc::ByteBuffer& buffer,
                          google::protobuf::Message* message);
void SerializeResponse(const google::protobuf::Message& message,
                       grpc::ByteBuffer* out);
// The request_id and conversation_id of a Send/Read/Typing client frame that
// did not parse, read straight off the wire (fields 1 and 2 of each).
std::pair<uint64_t, uint64_t> ScanRequestIds(const std::string& wire);

FramePtr ErrorFrame(uint64_t request_id, uint64_t conversation_id,
                    const absl::Status& status);
v1::SendAck MakeAck(uint64_t request_id, uint64_t conversation_id,
                    const std::string& client_msg_id, const SendResult& result);
void FinishUnary(grpc::ServerUnaryReactor* reactor, const absl::Status& status);

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_RPC_HELPERS_H_
