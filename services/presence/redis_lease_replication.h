#ifndef IM_SERVICES_PRESENCE_REDIS_LEASE_REPLICATION_H_
#define IM_SERVICES_PRESENCE_REDIS_LEASE_REPLICATION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "im/cluster/v1/cluster.pb.h"
#include "services/common/redis_connection.h"
#include "services/common/redis_subscriber.h"
#include "services/presence/lease_replication.h"
#include "services/presence/presence_lease_table.h"

namespace im::presence {

// Every presence node holds the whole lease table: each publishes the lease
// changes it serves on the channel <key_prefix>presence:all and applies the
// others' to its own table (which then notifies its subscribers as for
// local changes). Reads (Query, Subscribe) stay in memory; Redis carries
// only changes and heartbeats.
//
// A message node talks to one presence node, its owner. The owner
// publishes each heartbeat with the node's lease count and a digest of its
// leases; a replica whose own summary differs asks for the node's leases
// (at most once per sync_request_interval) and replaces what it holds.
// Heartbeats renew the node everywhere, so a node that dies stops being
// renewed on every presence node at once and its leases expire within the
// lease TTL everywhere. After (re)subscribing a presence node asks every
// other for the leases they own and publishes its own. While its
// subscription is down, it keeps renewing the remote nodes it knows
// (their state is frozen rather than expired for lack of news); they expire
// normally once news flows again and does not renew them.
class RedisLeaseReplication final : public LeaseReplication {
 public:
  struct Options {
    RedisConnection::Options redis;
    // Unique per running presence node.
    std::string instance_id;
    std::string key_prefix = "im:";
    // The table's lease TTL: a message node not heard from directly for
    // this long is no longer owned here.
    absl::Duration lease_ttl = absl::Seconds(30);
    size_t max_pending_events = 100000;
    absl::Duration sync_request_interval = absl::Seconds(1);
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
  };

  // INVALID_ARGUMENT for an empty instance_id or key_prefix or a null
  // table. Connects in the background.
  static absl::StatusOr<std::unique_ptr<RedisLeaseReplication>> Create(
      const Options& options, PresenceLeaseTable* table);
  ~RedisLeaseReplication() override;

  void LeaseOpened(const LeaseSpec& spec) override;
  void LeaseClosed(const std::string& node_id, uint64_t session_id) override;
  void NodeHeartbeat(const std::string& node_id) override;
  void StatusChanged(uint64_t user_id, const std::string& text) override;
  void Stop() override;

  // Subscribed and able to publish.
  bool connected() const;

  struct Stats {
    uint64_t events_sent = 0;
    uint64_t events_received = 0;
    uint64_t sync_requests = 0;   // replicas found to differ
    uint64_t events_dropped = 0;  // queue full while cut off
    size_t pending = 0;
  };
  Stats stats() const;

 private:
  RedisLeaseReplication(const Options& options, PresenceLeaseTable* table);
  void Start();
  void Publish(cluster::v1::PresenceEvent event);
  // The node talked to this presence node now.
  void Touch(const std::string& node_id);
  bool OwnsLocked(const std::string& node_id, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  cluster::v1::PresenceEvent LeasesOf(const std::string& node_id) const;
  void OnSubscribed();
  void OnLost();
  void OnMessage(absl::string_view payload);
  void Apply(const cluster::v1::PresenceEvent& event, absl::Time now);
  void RunPublisher();
  std::string Channel() const;

  const Options options_;
  PresenceLeaseTable* const table_;

  mutable absl::Mutex mu_;
  std::deque<cluster::v1::PresenceEvent> queue_ ABSL_GUARDED_BY(mu_);
  // Message nodes served here -> when they last called.
  absl::flat_hash_map<std::string, absl::Time> owned_ ABSL_GUARDED_BY(mu_);
  // Message nodes heard of from other presence nodes -> when.
  absl::flat_hash_map<std::string, absl::Time> remote_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Time> last_sync_request_
      ABSL_GUARDED_BY(mu_);
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool publisher_up_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;

  std::atomic<uint64_t> events_sent_{0};
  std::atomic<uint64_t> events_received_{0};
  std::atomic<uint64_t> sync_requests_{0};
  std::atomic<uint64_t> events_dropped_{0};

  std::unique_ptr<RedisSubscriber> subscriber_;
  std::thread publisher_;
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_REDIS_LEASE_REPLICATION_H_
