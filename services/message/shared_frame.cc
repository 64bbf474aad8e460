#include "services/message/shared_frame.h"

#include <grpcpp/support/slice.h>

#include <string>
#include <utility>

namespace im::message {

SharedFrame::SharedFrame(::im::message::v1::ServerFrame frame,
                         absl::Time published_at)
    : frame_(std::move(frame)), published_at_(published_at) {
  std::string bytes = frame_.SerializeAsString();
  bytes_ = bytes.size();
  grpc::Slice slice(std::move(bytes));
  wire_ = grpc::ByteBuffer(&slice, 1);
}

}  // namespace im::message
