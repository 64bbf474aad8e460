#ifndef IM_SERVICES_PRESENCE_PRESENCE_LEASE_CLIENT_H_
#define IM_SERVICES_PRESENCE_PRESENCE_LEASE_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/presence/device_presence_reporter.h"

namespace im::presence {

// A message node's link to presence: turns stream opens and closes into
// OpenLease/CloseLease calls, heartbeats the node's leases and re-opens them
// all when presence asks (Heartbeat resync: presence restarted, or this
// node restarted under the same node id).
//
// Callers only update a per-session record (streams open, lease held) and
// mark it for the background thread, which reconciles each marked session
// with presence: open when streams are open and no lease is held, close
// when none are open and a lease is held. So a stream that opens and
// closes before the thread gets to it costs no RPC, and retries after
// failures (with backoff) simply re-run the reconciliation. Up to
// max_in_flight calls run at once (one per session); heartbeats wait until
// none is in flight so the lease count they carry is exact.
class PresenceLeaseClient final : public DevicePresenceReporter {
 public:
  struct Options {
    // This node's id, unique among message nodes and stable across
    // restarts (1-128 characters).
    std::string node_id;
    // Zero: a third of the lease TTL presence announces.
    absl::Duration heartbeat_interval = absl::ZeroDuration();
    absl::Duration rpc_timeout = absl::Seconds(5);
    // Delay after a failed call, doubling up to the max.
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
    int max_in_flight = 32;
  };
  // Returns a ROLE_INTERNAL access token (InternalTokenSource::Token).
  using TokenSource = std::function<std::string()>;

  static absl::StatusOr<std::unique_ptr<PresenceLeaseClient>> Create(
      const Options& options, std::shared_ptr<grpc::Channel> channel,
      TokenSource token_source);

  // Shutdown(0).
  ~PresenceLeaseClient() override;

  void OnStreamOpened(const DeviceStream& stream) override;
  void OnStreamClosed(uint64_t user_id, uint64_t session_id) override;

  // Spends at most `flush_timeout` telling presence what changed so far
  // (call it after closing the node's streams on drain, so their users go
  // offline after the grace period rather than the lease TTL), then stops.
  // Idempotent; later stream calls are ignored.
  void Shutdown(absl::Duration flush_timeout);

  struct Stats {
    size_t sessions = 0;     // with open streams or a lease to close
    size_t leases_held = 0;  // leases presence acknowledged
    uint64_t opens_sent = 0;
    uint64_t closes_sent = 0;
    uint64_t failed_calls = 0;
    uint64_t heartbeats = 0;
    uint64_t resyncs = 0;  // heartbeats answered with resync
  };
  Stats stats() const;

 private:
  struct Session {
    uint64_t user_id = 0;
    auth::v1::DeviceKind device_kind = auth::v1::DEVICE_KIND_UNSPECIFIED;
    std::string device_name;
    int streams = 0;
    uint64_t lease_id = 0;  // 0: presence holds no lease for it
    bool queued = false;
    bool in_flight = false;
    bool rejected = false;  // presence refused the open; wait for a change
  };
  struct Call;

  PresenceLeaseClient(const Options& options,
                      std::shared_ptr<grpc::Channel> channel,
                      TokenSource token_source);

  // Queues the session for reconciliation unless it is queued or in flight.
  void MarkLocked(uint64_t session_id, Session& session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool NeedsCallLocked(const Session& session) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run();
  // Starts the call that reconciles one session; false if none is needed.
  void StartCall(uint64_t session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnCallDone(Call* call, const grpc::Status& status);
  void SendHeartbeat() ABSL_LOCKS_EXCLUDED(mu_);
  void BackOffLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const std::unique_ptr<v1::PresenceService::Stub> stub_;
  const TokenSource token_source_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t leases_held_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);
  absl::Time next_heartbeat_ ABSL_GUARDED_BY(mu_);
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  absl::Time retry_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);

  std::thread worker_;
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_PRESENCE_LEASE_CLIENT_H_
