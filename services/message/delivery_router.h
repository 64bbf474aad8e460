#ifndef IM_SERVICES_MESSAGE_DELIVERY_ROUTER_H_
#define IM_SERVICES_MESSAGE_DELIVERY_ROUTER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "services/message/delivery_bus.h"
#include "services/message/log_writer.h"
#include "services/message/shared_frame.h"
#include "services/message/stream_session.h"

namespace im::message {

// user id -> the live sessions of that user on this node. Publishing builds
// one immutable frame and hands it to every session of every recipient: all
// devices of all members, the sender's own devices and the sending stream
// included (the sender gets its SendAck first, then the Entry; clients
// dedupe by (conversation, seq)). The bus of a node alone. Thread-safe.
class DeliveryRouter : public DeliveryBus {
 public:
  struct Options {
    // Streams (Chat, Subscribe) one user may hold; polls do not count.
    size_t max_streams_per_user = 16;
  };

  explicit DeliveryRouter(Options options);

  // Replaces the listener (null = none); safe at any time. Once it
  // returns, the previous listener is not called any more.
  void SetLocalUsersListener(LocalUsersListener* listener)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // RESOURCE_EXHAUSTED when a counted session would exceed the user's
  // limit.
  absl::Status Register(const std::shared_ptr<StreamSession>& session,
                        bool counted);
  // Idempotent.
  void Unregister(const StreamSession* session);

  // EntryPublisher: to every session of every member and of `also_to`.
  void PublishEntry(storage::Entry entry, const ConversationMembers& members,
                    absl::Span<const uint64_t> also_to) override;

  // DeliveryBus: this node's sessions only.
  void PublishEphemeral(const FramePtr& frame, absl::Span<const uint64_t> users,
                        uint64_t except_user) override;
  // Runs `start` at once: every entry is published here.
  void WhenRoutable(uint64_t user_id,
                    absl::AnyInvocable<void() &&> start) override;

  std::vector<std::shared_ptr<StreamSession>> SessionsOf(uint64_t user_id);
  std::vector<std::shared_ptr<StreamSession>> AllSessions();
  size_t session_count();

 private:
  static constexpr size_t kShards = 32;

  struct UserSessions {
    std::vector<std::shared_ptr<StreamSession>> sessions;
    size_t counted = 0;
    // Parallel to `sessions`.
    std::vector<bool> is_counted;
  };
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<uint64_t, UserSessions> users ABSL_GUARDED_BY(mu);
  };

  Shard& ShardOf(uint64_t user_id) { return shards_[user_id % kShards]; }
  // Appends the sessions of `user_id` to `out`.
  void CollectSessions(uint64_t user_id,
                       std::vector<std::shared_ptr<StreamSession>>& out);

  const Options options_;
  // Written with every shard's lock held, read with one.
  LocalUsersListener* users_listener_ = nullptr;
  std::array<Shard, kShards> shards_;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_DELIVERY_ROUTER_H_
