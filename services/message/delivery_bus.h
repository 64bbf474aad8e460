#ifndef IM_SERVICES_MESSAGE_DELIVERY_BUS_H_
#define IM_SERVICES_MESSAGE_DELIVERY_BUS_H_

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/types/span.h"
#include "services/message/log_writer.h"
#include "services/message/shared_frame.h"

namespace im::message {

// Where a node's committed entries and ephemeral events (receipts, typing)
// go: the live sessions of this node and, when several nodes share the
// traffic, those of the others. One node alone uses its DeliveryRouter; a
// cluster uses RedisDeliveryBus (services/message/redis_delivery_bus.h).
// Thread-safe.
class DeliveryBus : public EntryPublisher {
 public:
  // A receipt or typing frame to the sessions of `users`, except those of
  // `except_user` (0 = none). Best effort: never stored.
  virtual void PublishEphemeral(const FramePtr& frame,
                                absl::Span<const uint64_t> users,
                                uint64_t except_user) = 0;

  // Runs `start` (once, on any thread) when entries committed from now on,
  // on any node, will be published to this node's sessions of `user_id`. A
  // session starts its replay from the log in `start`, so nothing committed
  // before is missed either.
  virtual void WhenRoutable(uint64_t user_id,
                            absl::AnyInvocable<void() &&> start) = 0;

  // After the log writer stopped: hands on what is still queued (bounded in
  // time) and stops background work. Idempotent.
  virtual void Stop() {}
};

// Told when a user gets a first live session on this node and when the
// last one goes; calls for one user come in order.
class LocalUsersListener {
 public:
  virtual ~LocalUsersListener() = default;
  // Called with the router's lock held: must not block or call back into
  // the router.
  virtual void OnUserArrived(uint64_t user_id) = 0;
  virtual void OnUserLeft(uint64_t user_id) = 0;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_DELIVERY_BUS_H_
