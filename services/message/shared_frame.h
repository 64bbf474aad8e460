#ifndef IM_SERVICES_MESSAGE_SHARED_FRAME_H_
#define IM_SERVICES_MESSAGE_SHARED_FRAME_H_

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <memory>

#include "im/message/v1/message.pb.h"

namespace im::message {

// A server frame serialized once and shared, immutable, by every stream it
// goes to: a fan-out to a thousand devices costs one serialization and a
// reference count per device. Writes copy `wire()`, which only takes
// references to its slices.
class SharedFrame {
 public:
  explicit SharedFrame(::im::message::v1::ServerFrame frame);

  const ::im::message::v1::ServerFrame& frame() const { return frame_; }
  const grpc::ByteBuffer& wire() const { return wire_; }
  // Serialized size, what a stream's outbound bound counts.
  size_t bytes() const { return bytes_; }

 private:
  const ::im::message::v1::ServerFrame frame_;
  grpc::ByteBuffer wire_;
  size_t bytes_ = 0;
};

using FramePtr = std::shared_ptr<const SharedFrame>;

inline FramePtr MakeFrame(::im::message::v1::ServerFrame frame) {
  return std::make_shared<const SharedFrame>(std::move(frame));
}

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_SHARED_FRAME_H_
