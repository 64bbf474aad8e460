#ifndef IM_SERVICES_PRESENCE_DEVICE_PRESENCE_REPORTER_H_
#define IM_SERVICES_PRESENCE_DEVICE_PRESENCE_REPORTER_H_

#include <cstdint>
#include <string>

#include "im/auth/v1/auth.pb.h"

namespace im::presence {

// A device stream (Chat, Subscribe, a long poll) that a message node
// serves.
struct DeviceStream {
  uint64_t user_id = 0;
  uint64_t session_id = 0;  // the device; from the caller's access token
  auth::v1::DeviceKind device_kind = auth::v1::DEVICE_KIND_UNSPECIFIED;
  std::string device_name;  // at most 128 characters of UTF-8
};

// What the message service calls when device streams open and close, so
// presence knows who is online. A device is online while at least one of
// its streams is open: calls nest per session, and every OnStreamOpened is
// matched by exactly one OnStreamClosed for the same user and session.
//
// Both calls only record the change and return at once (no RPC on the
// caller's thread), so they are safe on gRPC callback threads. Thread-safe.
// Implementations: PresenceLeaseClient (real, talks to presence) and
// FakeDevicePresenceReporter (records calls, for tests).
class DevicePresenceReporter {
 public:
  virtual ~DevicePresenceReporter() = default;

  virtual void OnStreamOpened(const DeviceStream& stream) = 0;
  virtual void OnStreamClosed(uint64_t user_id, uint64_t session_id) = 0;
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_DEVICE_PRESENCE_REPORTER_H_
