#ifndef IM_SERVICES_AUTH_LOGIN_THROTTLE_H_
#define IM_SERVICES_AUTH_LOGIN_THROTTLE_H_

#include <cstddef>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace im::auth {

// Token buckets of credential attempts per username and per peer address,
// in memory (per auth node). Every attempt takes a token from both buckets
// up front, so concurrent guesses cannot overrun the limit; a success gives
// the attempts back. An empty bucket refuses the attempt with
// RESOURCE_EXHAUSTED and a retry hint (services/common/retry_after.h).
// Thread-safe.
class LoginThrottle {
 public:
  // `burst` attempts at once, then one more per `refill_interval`.
  struct Limit {
    int burst = 5;
    absl::Duration refill_interval = absl::Seconds(30);
  };
  struct Options {
    Limit per_username{5, absl::Seconds(30)};
    Limit per_peer{20, absl::Seconds(3)};
    // Buckets kept at most; full buckets are dropped first. When every
    // tracked bucket is in use, attempts from new keys are refused until
    // some refill (fail closed under a flood of distinct keys).
    size_t max_tracked_keys = 100000;
  };
  using Clock = std::function<absl::Time()>;

  explicit LoginThrottle(const Options& options, Clock clock = absl::Now);

  // Takes one attempt for `username` (skipped when empty) and for `peer`
  // (skipped when empty). OK, or RESOURCE_EXHAUSTED naming the wait; a
  // refused attempt charges neither bucket.
  absl::Status TryAcquire(absl::string_view username, absl::string_view peer);

  // The attempt succeeded: the username's bucket is reset to full (OWASP:
  // reset the failure count on success) and the peer's attempt returned.
  void RecordSuccess(absl::string_view username, absl::string_view peer);

  size_t tracked_keys() const;

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  using BucketMap = absl::flat_hash_map<std::string, Bucket>;

  // The bucket for `key` with tokens refilled up to `now`, creating a full
  // one if needed; null when no room is left for a new key.
  Bucket* FindOrAddLocked(BucketMap& map, const Limit& limit,
                          absl::string_view key, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropFullBucketsLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Refill(Bucket& bucket, const Limit& limit, absl::Time now);

  const Options options_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  BucketMap by_username_ ABSL_GUARDED_BY(mu_);
  BucketMap by_peer_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// The throttling key for a gRPC peer string: the IP address without port
// for IPv4 ("ipv4:10.0.0.7:5311" -> "10.0.0.7"), the /64 network for IPv6
// (one host usually owns a whole /64), "unix" for Unix sockets, and the
// string itself otherwise.
std::string PeerThrottleKey(absl::string_view grpc_peer);

}  // namespace im::auth

#endif  // IM_SERVICES_AUTH_LOGIN_THROTTLE_H_
