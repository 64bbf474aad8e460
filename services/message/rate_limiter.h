#ifndef IM_SERVICES_MESSAGE_RATE_LIMITER_H_
#define IM_SERVICES_MESSAGE_RATE_LIMITER_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace im::message {

// A token bucket per user: `rate_per_second` tokens refill continuously up to
// `burst`; each action takes one. Thread-safe; users are spread over
// independently locked shards so senders do not contend.
class UserRateLimiter {
 public:
  struct Options {
    // 0 = unlimited (TryAcquire always succeeds).
    double rate_per_second = 0;
    double burst = 1;
    // Buckets kept in memory; beyond it, full (idle) buckets are forgotten,
    // which loses nothing because a forgotten bucket restarts full.
    size_t max_tracked_users = 200000;
  };

  explicit UserRateLimiter(Options options);

  // Takes a token for `user_id` at `now`; false when the bucket is empty.
  bool TryAcquire(uint64_t user_id, absl::Time now);

 private:
  static constexpr size_t kShards = 16;

  struct Bucket {
    double tokens;
    absl::Time refilled_at;
  };
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<uint64_t, Bucket> buckets ABSL_GUARDED_BY(mu);
  };

  // Refills `bucket` up to `now`.
  void Refill(Bucket& bucket, absl::Time now) const;
  void ForgetIdleLocked(Shard& shard, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const Options options_;
  std::array<Shard, kShards> shards_;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_RATE_LIMITER_H_
