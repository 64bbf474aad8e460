#ifndef IM_SERVICES_COMMON_REVOCATION_WATCHER_H_
#define IM_SERVICES_COMMON_REVOCATION_WATCHER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "services/common/authenticator.h"

namespace im {

// Keeps a RevocationSet in sync with auth's WatchRevocations stream, so the
// service's Authenticator refuses revoked sessions within milliseconds of
// the revocation (and RevocationSet listeners can close their streams).
// Each (re)connection applies auth's snapshot and then every pushed batch;
// a broken stream is reopened with jittered exponential backoff. Entries
// older than `retention` are pruned (their access tokens have expired).
//
// While disconnected the set keeps what it had but misses new revocations;
// connected() tells, for health checks or callers that want to fail closed.
// Thread-safe; owns one reader thread and one pruning thread.
class RevocationWatcher {
 public:
  struct Options {
    // The access-token TTL plus allowed clock skew between services.
    absl::Duration retention = absl::Minutes(16);
    // Reconnect backoff: starts here, doubles per failed attempt up to
    // max_backoff; each wait is drawn uniformly from [b/2, b].
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(10);
    // How often old entries are pruned.
    absl::Duration prune_interval = absl::Seconds(30);
  };

  // Starts watching at once. `auth_channel` leads to the auth service (see
  // MakeChannel); `revocations` and `tokens` (ROLE_INTERNAL tokens) must
  // outlive the watcher. INVALID_ARGUMENT for null pointers or backoffs
  // that are not positive and ordered.
  static absl::StatusOr<std::unique_ptr<RevocationWatcher>> Create(
      const Options& options, std::shared_ptr<grpc::Channel> auth_channel,
      RevocationSet* revocations, InternalTokenSource* tokens);

  // Stop()s.
  ~RevocationWatcher();

  RevocationWatcher(const RevocationWatcher&) = delete;
  RevocationWatcher& operator=(const RevocationWatcher&) = delete;

  // Cancels the stream and joins the threads. Idempotent.
  void Stop();

  // True while a stream is open and its snapshot has been applied.
  bool connected() const;
  // Waits until connected() or `timeout` passes; returns connected().
  bool WaitUntilConnected(absl::Duration timeout) const;
  // Snapshots applied so far (one per successful connection).
  uint64_t snapshots_applied() const;

 private:
  RevocationWatcher(const Options& options,
                    std::shared_ptr<grpc::Channel> auth_channel,
                    RevocationSet* revocations, InternalTokenSource* tokens);

  void RunReader();
  void RunPruner();
  // One stream from open to end; true if its snapshot arrived.
  bool WatchOnce();
  void Apply(const auth::v1::RevocationBatch& batch);
  // Sleeps `d` unless stopped first; false if stopped.
  bool SleepUnlessStopped(absl::Duration d);

  const Options options_;
  const std::unique_ptr<auth::v1::AuthService::Stub> stub_;
  RevocationSet* const revocations_;
  InternalTokenSource* const tokens_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t snapshots_applied_ ABSL_GUARDED_BY(mu_) = 0;
  // The open stream's context, for Stop() to cancel.
  grpc::ClientContext* active_call_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread reader_;
  std::thread pruner_;
};

}  // namespace im

#endif  // IM_SERVICES_COMMON_REVOCATION_WATCHER_H_
