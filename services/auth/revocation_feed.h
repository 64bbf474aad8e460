#ifndef IM_SERVICES_AUTH_REVOCATION_FEED_H_
#define IM_SERVICES_AUTH_REVOCATION_FEED_H_

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/authenticator.h"
#include "storage/session_store.h"

namespace im::auth {

// Where auth's revocations go: the RevocationSet that auth's own
// Authenticator reads, and every WatchRevocations stream, pushed the moment
// auth revokes a session (no polling delay on the same node). Revocations
// made by other auth nodes sharing the database are picked up by polling
// the store every poll_interval. Thread-safe.
class RevocationFeed {
 public:
  struct Options {
    // How far back revocations matter: the access-token TTL plus allowed
    // clock skew. Older ones are pruned (their tokens have expired).
    absl::Duration retention = absl::Minutes(16);
    // How often to read the store for revocations made elsewhere; zero
    // turns polling off (single auth node).
    absl::Duration poll_interval = absl::Seconds(1);
    // Each poll rereads this far behind the previous one, to catch
    // transactions that committed after a later-stamped one.
    absl::Duration poll_overlap = absl::Seconds(10);
  };
  using Clock = std::function<absl::Time()>;

  // Receives revocations. Calls come with the feed's lock held: they must
  // not block or call back into the feed.
  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    // Newly revoked sessions (never empty, each at most once per feed).
    virtual void OnRevoked(
        const std::vector<storage::RevokedSessionRecord>& revoked) = 0;
    // The feed is closing; nothing follows.
    virtual void OnFeedClosed() = 0;
  };

  // Loads the revocations within `retention` into `local` and starts the
  // poller. `local` must be fed only through this feed; store and local
  // must outlive it.
  static absl::StatusOr<std::unique_ptr<RevocationFeed>> Create(
      const Options& options, storage::SessionStore* store,
      RevocationSet* local, Clock clock = absl::Now);

  // Stops the poller and closes every subscription.
  ~RevocationFeed();

  RevocationFeed(const RevocationFeed&) = delete;
  RevocationFeed& operator=(const RevocationFeed&) = delete;

  // Sessions this process revoked: into the local set and to every
  // subscriber before it returns. Already known ones are skipped.
  void Publish(const std::vector<storage::RevokedSessionRecord>& revoked);

  // False (and no OnFeedClosed) once the feed is closed.
  bool Subscribe(Subscriber* subscriber);
  // After this returns the subscriber is not called again.
  void Unsubscribe(Subscriber* subscriber);

  // Every revocation within `retention`, read from the store (so it covers
  // all auth nodes), oldest first. Blocks on the database.
  absl::StatusOr<std::vector<storage::RevokedSessionRecord>> Snapshot();

  // Ends every subscription (OnFeedClosed) and refuses new ones; for drain.
  void Close();

  // Reads the store once for revocations made elsewhere (the poller's step;
  // public for tests).
  absl::Status PollOnce();

 private:
  RevocationFeed(const Options& options, storage::SessionStore* store,
                 RevocationSet* local, Clock clock);

  void PublishLocked(const std::vector<storage::RevokedSessionRecord>& revoked)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunPoller();

  const Options options_;
  storage::SessionStore* const store_;
  RevocationSet* const local_;
  const Clock clock_;

  absl::Mutex mu_;
  absl::flat_hash_set<Subscriber*> subscribers_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_poll_since_ ABSL_GUARDED_BY(mu_);
  std::thread poller_;
};

}  // namespace im::auth

#endif  // IM_SERVICES_AUTH_REVOCATION_FEED_H_
