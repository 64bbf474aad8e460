#include "services/message/rate_limiter.h"

#include <algorithm>

namespace im::message {

UserRateLimiter::UserRateLimiter(Options options) : options_(options) {}

void UserRateLimiter::Refill(Bucket& bucket, absl::Time now) const {
  if (now <= bucket.refilled_at) return;
  const double elapsed = absl::ToDoubleSeconds(now - bucket.refilled_at);
  bucket.tokens =
      std::min(options_.burst, bucket.tokens + elapsed * options_.rate_per_second);
  bucket.refilled_at = now;
}

void UserRateLimiter::ForgetIdleLocked(Shard& shard, absl::Time now) {
  absl::erase_if(shard.buckets, [&](auto& item) {
    Refill(item.second, now);
    return item.second.tokens >= options_.burst;
  });
}

bool UserRateLimiter::TryAcquire(uint64_t user_id, absl::Time now) {
  if (options_.rate_per_second <= 0) return true;
  Shard& shard = shards_[user_id % kShards];
  absl::MutexLock lock(&shard.mu);
  auto [it, inserted] =
      shard.buckets.try_emplace(user_id, Bucket{options_.burst, now});
  Bucket& bucket = it->second;
  Refill(bucket, now);
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  if (inserted &&
      shard.buckets.size() > options_.max_tracked_users / kShards + 1) {
    ForgetIdleLocked(shard, now);
  }
  return true;
}

}  // namespace im::message
