#include "services/message/rpc_helpers.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <vector>

#include "services/common/byte_buffer.h"
#include "services/common/status.h"

namespace im::message {

absl::Status ConversationNotFound() {
  return absl::NotFoundError("conversation not found");
}

absl::Status HideMembership(const absl::Status& status) {
  return absl::IsNotFound(status) ? ConversationNotFound() : status;
}

absl::Status ParseRequest(const grpc::ByteBuffer& buffer,
                          google::protobuf::Message* message) {
  if (!message->ParseFromString(ByteBufferToString(buffer))) {
    return absl::InvalidArgumentError(
        "request could not be parsed: string fields must be valid UTF-8");
  }
  return absl::OkStatus();
}

void SerializeResponse(const google::protobuf::Message& message,
                       grpc::ByteBuffer* out) {
  grpc::Slice slice(message.SerializeAsString());
  *out = grpc::ByteBuffer(&slice, 1);
}

std::pair<uint64_t, uint64_t> ScanRequestIds(const std::string& wire) {
  google::protobuf::io::CodedInputStream input(
      reinterpret_cast<const uint8_t*>(wire.data()),
      static_cast<int>(wire.size()));
  for (uint32_t tag = input.ReadTag(); tag != 0; tag = input.ReadTag()) {
    const int field = static_cast<int>(tag >> 3);
    const int type = static_cast<int>(tag & 7);
    if (type == 2 && field >= 2 && field <= 4) {
      uint32_t length;
      std::string body;
      if (!input.ReadVarint32(&length) ||
          !input.ReadString(&body, static_cast<int>(length))) {
        break;
      }
      google::protobuf::io::CodedInputStream inner(
          reinterpret_cast<const uint8_t*>(body.data()),
          static_cast<int>(body.size()));
      uint64_t request_id = 0;
      uint64_t conversation_id = 0;
      for (uint32_t t = inner.ReadTag(); t != 0; t = inner.ReadTag()) {
        if ((t & 7) == 0) {
          uint64_t value;
          if (!inner.ReadVarint64(&value)) break;
          if ((t >> 3) == 1) request_id = value;
          if ((t >> 3) == 2) conversation_id = value;
        } else if (!google::protobuf::internal::WireFormatLite::SkipField(
                       &inner, t)) {
          break;
        }
      }
      return {request_id, conversation_id};
    }
    if (!google::protobuf::internal::WireFormatLite::SkipField(&input, tag)) {
      break;
    }
  }
  return {0, 0};
}

FramePtr ErrorFrame(uint64_t request_id, uint64_t conversation_id,
                    const absl::Status& status) {
  v1::ServerFrame frame;
  v1::Error* error = frame.mutable_error();
  error->set_request_id(request_id);
  error->set_code(static_cast<int32_t>(status.code()));
  error->set_message(std::string(status.message()));
  error->set_conversation_id(conversation_id);
  return MakeFrame(std::move(frame));
}

v1::SendAck MakeAck(uint64_t request_id, uint64_t conversation_id,
                    const std::string& client_msg_id,
                    const SendResult& result) {
  v1::SendAck ack;
  ack.set_request_id(request_id);
  ack.set_conversation_id(conversation_id);
  ack.set_seq(result.seq);
  *ack.mutable_sent_at() = result.sent_at;
  ack.set_client_msg_id(client_msg_id);
  ack.set_duplicate(result.duplicate);
  return ack;
}

void FinishUnary(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  reactor->Finish(ToGrpcStatus(status));
}

absl::Status ShuttingDown() {
  return absl::UnavailableError("server is shutting down; retry elsewhere");
}

}  // namespace im::message
