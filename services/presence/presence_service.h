#ifndef IM_SERVICES_PRESENCE_PRESENCE_SERVICE_H_
#define IM_SERVICES_PRESENCE_PRESENCE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/common/authenticator.h"
#include "services/common/worker_pool.h"
#include "services/presence/lease_replication.h"
#include "services/presence/presence_fanout.h"
#include "services/presence/presence_lease_table.h"
#include "services/presence/visibility_cache.h"
#include "storage/conversation_store.h"
#include "storage/user_store.h"

namespace im::presence {

// The PresenceService RPCs (callback API). Lease RPCs touch only memory and
// answer on the callback thread; Query, Subscribe set-up, SetStatus and
// visibility checks run on a worker pool because they may read MySQL.
// Background threads: a ticker (lease expiry, grace periods, visibility
// refresh, loading stored fields) and a last_seen writer.
class PresenceServiceImpl final : public v1::PresenceService::CallbackService {
 public:
  struct Options {
    // A node that does not heartbeat for this long loses its leases.
    absl::Duration lease_ttl = absl::Seconds(30);
    // A device that closes and re-opens within this changes nothing.
    absl::Duration grace_period = absl::Seconds(2);
    // Changes for one subscriber are batched over this window.
    absl::Duration coalesce_window = absl::Milliseconds(100);
    // last_seen is written at most once per interval per user.
    absl::Duration last_seen_interval = absl::Seconds(60);
    // How often due last_seen values are written, and how many per write.
    absl::Duration last_seen_flush_period = absl::Seconds(1);
    size_t last_seen_batch = 500;
    // Visibility answers are cached this long per (viewer, user); live
    // subscriptions re-check what they may see this often.
    absl::Duration visibility_cache_ttl = absl::Seconds(5);
    absl::Duration visibility_refresh = absl::Seconds(30);
    // Offline users untouched this long are dropped from memory.
    absl::Duration idle_retention = absl::Minutes(10);
    // Subscribe streams one user may hold (RESOURCE_EXHAUSTED beyond).
    size_t max_subscriptions_per_user = 32;
    int worker_threads = 4;
    size_t worker_queue = 10000;
    // How often leases and grace periods are checked.
    absl::Duration tick = absl::Milliseconds(50);
    std::function<absl::Time()> clock = absl::Now;
    // Optional: shares leases with other presence nodes (for example
    // RedisLeaseReplication::Create). Called once by Create with the
    // node's table; the service owns the result.
    std::function<absl::StatusOr<std::unique_ptr<LeaseReplication>>(
        PresenceLeaseTable* table)>
        make_replication;
  };

  // The pointers must outlive the service; `revocations` may be null. When
  // given, streams of a revoked session end with UNAUTHENTICATED.
  static absl::StatusOr<std::unique_ptr<PresenceServiceImpl>> Create(
      const Options& options, const Authenticator* authenticator,
      storage::UserStore* users, storage::ConversationReader* conversations,
      RevocationSet* revocations);

  // Calls Shutdown.
  ~PresenceServiceImpl() override;

  // Ends every Subscribe stream with UNAVAILABLE, stops the background
  // threads and writes every pending last_seen (online users as seen now).
  // Call before the gRPC server shuts down. Idempotent.
  void Shutdown();

  struct Stats {
    size_t nodes = 0;
    size_t leases = 0;
    uint64_t leases_expired = 0;  // dropped because their node went silent
    size_t users_online = 0;
    size_t users_in_memory = 0;
    size_t subscriptions = 0;
    uint64_t updates_sent = 0;  // presences in change batches
    uint64_t batches_sent = 0;
    uint64_t last_seen_rows_written = 0;
    uint64_t last_seen_write_failures = 0;
  };
  Stats stats() const;

  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* context,
                                  const v1::QueryRequest* request,
                                  v1::QueryResponse* response) override;
  grpc::ServerWriteReactor<v1::PresenceBatch>* Subscribe(
      grpc::CallbackServerContext* context,
      const v1::SubscribeRequest* request) override;
  grpc::ServerUnaryReactor* SetStatus(grpc::CallbackServerContext* context,
                                      const v1::SetStatusRequest* request,
                                      v1::SetStatusResponse* response) override;
  grpc::ServerUnaryReactor* OpenLease(grpc::CallbackServerContext* context,
                                      const v1::OpenLeaseRequest* request,
                                      v1::OpenLeaseResponse* response) override;
  grpc::ServerUnaryReactor* CloseLease(
      grpc::CallbackServerContext* context,
      const v1::CloseLeaseRequest* request,
      v1::CloseLeaseResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;

 private:
  class SubscribeReactor;

  PresenceServiceImpl(const Options& options,
                      const Authenticator* authenticator,
                      storage::UserStore* users,
                      storage::ConversationReader* conversations,
                      RevocationSet* revocations);

  // A lease RPC's check: an authenticated ROLE_INTERNAL caller naming a
  // valid node.
  absl::Status AuthorizeNodeCall(const grpc::CallbackServerContext& context,
                                 const std::string& node_id) const;
  // Users among `candidates` the caller may see (internal callers see all).
  absl::StatusOr<absl::flat_hash_set<uint64_t>> VisibleTo(
      const Caller& caller, absl::Span<const uint64_t> candidates);
  // Reads the stored last_seen/status of users not yet in memory.
  absl::Status LoadStoredState(absl::Span<const uint64_t> users);
  absl::Status DoQuery(const Caller& caller, const v1::QueryRequest& request,
                       v1::QueryResponse* response);
  void RefreshVisibility(
      const std::vector<std::shared_ptr<PresenceSubscription>>& due);
  void RunTicker();
  void RunLastSeenWriter();
  // Writes due last_seen values in batches; false if a write failed.
  bool WriteLastSeen(bool flush_all);

  const Options options_;
  const Authenticator* const authenticator_;
  storage::UserStore* const users_;
  RevocationSet* const revocations_;
  uint64_t revocation_listener_ = 0;

  PresenceLeaseTable table_;
  VisibilityCache visibility_;
  PresenceFanout fanout_;
  // Set by Create when Options::make_replication is.
  std::unique_ptr<LeaseReplication> replication_;
  std::atomic<bool> refreshing_visibility_{false};
  std::atomic<uint64_t> last_seen_rows_written_{0};
  std::atomic<uint64_t> last_seen_write_failures_{0};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;

  // Declared last: destroyed (drained) first, while what tasks use lives.
  std::unique_ptr<WorkerPool> pool_;
  std::thread ticker_;
  std::thread last_seen_writer_;
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_PRESENCE_SERVICE_H_
