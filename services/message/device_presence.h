#ifndef IM_SERVICES_MESSAGE_DEVICE_PRESENCE_H_
#define IM_SERVICES_MESSAGE_DEVICE_PRESENCE_H_

#include <cstdint>
#include <string>

#include "im/auth/v1/auth.pb.h"

// Seam to the presence service's DevicePresenceReporter
// (//services/presence:lease_client) until it lands: the same shape, so
// switching is changing this header into a using-declaration.

namespace im::message {

// A device stream this node serves.
struct DeviceStream {
  uint64_t user_id = 0;
  uint64_t session_id = 0;
  auth::v1::DeviceKind device_kind = auth::v1::DEVICE_KIND_UNSPECIFIED;
  std::string device_name;
};

// Told when device streams open and close; calls nest per session, each
// open matched by one close. Must return at once. Thread-safe.
class DevicePresenceReporter {
 public:
  virtual ~DevicePresenceReporter() = default;
  virtual void OnStreamOpened(const DeviceStream& stream) = 0;
  virtual void OnStreamClosed(uint64_t user_id, uint64_t session_id) = 0;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_DEVICE_PRESENCE_H_
