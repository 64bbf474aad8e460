#ifndef IM_SERVICES_MESSAGE_REDIS_DELIVERY_BUS_H_
#define IM_SERVICES_MESSAGE_REDIS_DELIVERY_BUS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "im/cluster/v1/cluster.pb.h"
#include "services/common/redis_connection.h"
#include "services/common/redis_subscriber.h"
#include "services/common/worker_pool.h"
#include "services/message/delivery_bus.h"
#include "services/message/delivery_router.h"
#include "services/message/membership_cache.h"
#include "services/message/timer_queue.h"
#include "storage/conversation_store.h"

namespace im::message {

// The DeliveryBus of a message node among several: delivers to this node's
// sessions through its router, as a node alone does, and carries committed
// entries, receipts and typing to the other nodes through Redis pub/sub.
// MySQL stays the source of truth: Redis only carries notifications, and
// whatever a node may have missed is read from the log.
//
// Routing (names under `key_prefix`, see docs/scaling.md): every node
// subscribes to its own channel msg:node:<node_id> and to msg:all. The
// hash msg:route:<user_id> maps the nodes holding sessions of the user to
// the time their entry expires (unix ms); a node writes its field when the
// user's first session registers, refreshes all of them every route_ttl/3
// and deletes it when the last session goes. After a commit the publisher
// thread reads the recipients' hashes (pipelined HGETALL) and publishes to
// each other node one batch per round holding every notice once with the
// users it is for there.
//
// Why nothing acknowledged is missed:
// - A session replays from the log only after its user's route was
//   written (WhenRoutable): every later commit on any node finds the route,
//   every earlier one is in the replay.
// - Notices stay queued until Redis acknowledged their PUBLISH; after a
//   lost connection they are re-addressed (members read afresh, routes
//   looked up again) and sent again. Sessions drop what they already have.
// - While this node is cut off (either connection down), its sessions'
//   users are marked; once both connections are back it rewrites its
//   routes and each marked user's sessions re-read their conversations'
//   positions from the log (StreamSession::OnLogPosition).
// - Member changes go to every node, which drops its cached members. A
//   node may publish an entry with an outdated member list in the moment
//   before it hears of a change, so the sessions of added members re-read
//   that conversation's last seq at `added_member_checks` after the change.
// - A full queue (Redis down for long) drops the oldest notices; once back,
//   the node asks every node to resync all its sessions.
// Thread-safe. Threads: the subscriber's, a publisher, a timer and a small
// pool for the log reads of resyncs.
class RedisDeliveryBus final : public DeliveryBus, private LocalUsersListener {
 public:
  struct Options {
    RedisConnection::Options redis;
    // Unique among the message nodes sharing the Redis server.
    std::string node_id;
    // Prefix of every key and channel.
    std::string key_prefix = "im:";
    // A node's route entries live this long unless refreshed.
    absl::Duration route_ttl = absl::Seconds(60);
    // Notices kept while Redis is unreachable; beyond, the oldest are
    // dropped and every node resyncs once Redis is back.
    size_t max_pending_notices = 100000;
    // Entries larger than this (serialized) travel as a log position.
    size_t max_inline_entry_bytes = 64 << 10;
    // Notices per publish round; bytes per PUBLISH (a larger batch is
    // split).
    size_t max_notices_per_round = 2000;
    size_t max_batch_bytes = 256 << 10;
    std::vector<absl::Duration> added_member_checks = {absl::Seconds(1),
                                                       absl::Seconds(5)};
    int resync_threads = 2;
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
    // Stop waits this long for queued notices to go out.
    absl::Duration flush_timeout = absl::Seconds(2);
  };

  // INVALID_ARGUMENT for an empty node_id or key_prefix, a route_ttl under
  // 3 s, or null pointers. Connects in the background: Create succeeds
  // while Redis is down. Becomes `router`'s LocalUsersListener; all
  // pointers must outlive the bus.
  static absl::StatusOr<std::unique_ptr<RedisDeliveryBus>> Create(
      const Options& options, DeliveryRouter* router, MembershipCache* members,
      storage::ConversationReader* reader);
  // Stop().
  ~RedisDeliveryBus() override;

  // DeliveryBus.
  void PublishEntry(storage::Entry entry, const ConversationMembers& members,
                    absl::Span<const uint64_t> also_to) override;
  void PublishEphemeral(const FramePtr& frame, absl::Span<const uint64_t> users,
                        uint64_t except_user) override;
  void WhenRoutable(uint64_t user_id,
                    absl::AnyInvocable<void() &&> start) override;
  void Stop() override;

  // Both connections up and this node's routes written.
  bool connected() const;

  struct Stats {
    uint64_t notices_sent = 0;  // notices published to other nodes
    uint64_t batches_sent = 0;  // PUBLISH commands
    uint64_t notices_received = 0;
    uint64_t notices_dropped = 0;  // queue full while cut off
    uint64_t user_resyncs = 0;     // users whose sessions re-read the log
    uint64_t reconnects = 0;       // times the node came back
    size_t pending = 0;            // notices not yet acknowledged
  };
  Stats stats() const;

 private:
  // A notice waiting for its PUBLISH.
  struct Outgoing {
    cluster::v1::DeliveryNotice notice;  // user_ids left empty
    std::vector<uint64_t> users;         // recipients (node channels)
    bool broadcast = false;              // for every node (msg:all)
    bool droppable = false;              // receipts and typing
  };
  struct Route {
    uint64_t generation = 0;
    bool written = false;
    // Sessions started while the route was not written: re-read the log
    // once it is.
    bool needs_resync = false;
    std::vector<absl::AnyInvocable<void() &&>> waiters;
  };
  struct RouteOp {
    uint64_t user_id = 0;
    bool add = false;
    uint64_t generation = 0;
  };

  RedisDeliveryBus(const Options& options, DeliveryRouter* router,
                   MembershipCache* members,
                   storage::ConversationReader* reader);
  void StartThreads();

  // LocalUsersListener (under the router's lock).
  void OnUserArrived(uint64_t user_id) override;
  void OnUserLeft(uint64_t user_id) override;

  void Enqueue(Outgoing outgoing);
  // The node is cut off: routes count as unwritten, waiting sessions start
  // (and are resynced later), cached members may go stale.
  // Returns the sessions that waited for their route, to be started
  // outside the lock.
  std::vector<absl::AnyInvocable<void() &&>> MarkCutOffLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnSubscribed();
  void OnSubscriptionLost();
  void OnMessage(absl::string_view payload);
  void DeliverRemote(cluster::v1::DeliveryNotice& notice);
  // Sessions of local users among `added` re-read `conversation_id`'s last
  // seq after each added_member_checks delay.
  void ScheduleAddedMemberChecks(uint64_t conversation_id,
                                 absl::Span<const uint64_t> added);
  void CheckConversation(uint64_t conversation_id, std::vector<uint64_t> users);
  // Every session of `user_id` re-reads its conversations' positions.
  void ResyncUser(uint64_t user_id);
  void ResyncUsers(std::vector<uint64_t> users);

  // Publisher thread.
  void RunPublisher();
  // After (re)connecting: rewrites every route, re-addresses what is
  // pending, then counts as connected. False if the connection broke.
  bool Reconnected(RedisConnection& redis);
  // Writes queued route changes; false if the connection broke.
  bool WriteRouteOps(RedisConnection& redis);
  bool RefreshRoutes(RedisConnection& redis);
  // Publishes `in_flight_`; false if the connection broke (they stay).
  bool PublishInFlight(RedisConnection& redis);
  // Recipients of queued entries read afresh (this node may have missed
  // member changes).
  void ReaddressPending();
  void AppendRouteWrite(RedisConnection& redis, uint64_t user_id);

  std::string RouteKey(uint64_t user_id) const;
  std::string NodeChannel(const std::string& node_id) const;
  std::string SharedChannel() const;

  const Options options_;
  DeliveryRouter* const router_;
  MembershipCache* const members_;
  storage::ConversationReader* const reader_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Route> routes_ ABSL_GUARDED_BY(mu_);
  std::deque<RouteOp> route_ops_ ABSL_GUARDED_BY(mu_);
  std::deque<Outgoing> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  // Set when cut off; cleared by Reconnected.
  bool needs_reconnect_work_ ABSL_GUARDED_BY(mu_) = true;
  // Notices were dropped: ask every node to resync once back.
  bool dropped_since_connected_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Publisher thread only.
  std::deque<Outgoing> in_flight_;
  absl::Time next_refresh_ = absl::InfinitePast();

  std::atomic<uint64_t> notices_sent_{0};
  std::atomic<uint64_t> batches_sent_{0};
  std::atomic<uint64_t> notices_received_{0};
  std::atomic<uint64_t> notices_dropped_{0};
  std::atomic<uint64_t> user_resyncs_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<size_t> in_flight_count_{0};
  // Stop began: resync reads return at once.
  std::atomic<bool> shutting_down_{false};

  std::unique_ptr<WorkerPool> resync_pool_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<RedisSubscriber> subscriber_;
  std::thread publisher_;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_REDIS_DELIVERY_BUS_H_
