#ifndef IM_SERVICES_MESSAGE_SHARED_FRAME_H_
#define IM_SERVICES_MESSAGE_SHARED_FRAME_H_

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <memory>

#include "absl/time/time.h"
#include "im/message/v1/message.pb.h"

namespace im::message {

// A server frame serialized once and shared, immutable, by every stream it
// goes to: a fan-out to a thousand devices costs one serialization and a
// reference count per device. Writes copy `wire()`, which only takes
// references to its slices.
class SharedFrame {
 public:
  // `published_at`: when the router published a just-committed entry;
  // InfinitePast for every other frame (replies, replays, gap reads).
  explicit SharedFrame(::im::message::v1::ServerFrame frame,
                       absl::Time published_at = absl::InfinitePast());

  const ::im::message::v1::ServerFrame& frame() const { return frame_; }
  const grpc::ByteBuffer& wire() const { return wire_; }
  // Serialized size, what a stream's outbound bound counts.
  size_t bytes() const { return bytes_; }
  absl::Time published_at() const { return published_at_; }

 private:
  const ::im::message::v1::ServerFrame frame_;
  grpc::ByteBuffer wire_;
  size_t bytes_ = 0;
  const absl::Time published_at_;
};

using FramePtr = std::shared_ptr<const SharedFrame>;

inline FramePtr MakeFrame(::im::message::v1::ServerFrame frame,
                          absl::Time published_at = absl::InfinitePast()) {
  return std::make_shared<const SharedFrame>(std::move(frame), published_at);
}

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_SHARED_FRAME_H_
