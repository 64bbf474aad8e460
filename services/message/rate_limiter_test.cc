#include "services/message/rate_limiter.h"

#include "gtest/gtest.h"

namespace im::message {
namespace {

TEST(UserRateLimiterTest, BurstThenRefillPerUser) {
  UserRateLimiter::Options options;
  options.rate_per_second = 2;
  options.burst = 3;
  UserRateLimiter limiter(options);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryAcquire(1, t0));
  EXPECT_FALSE(limiter.TryAcquire(1, t0));
  EXPECT_TRUE(limiter.TryAcquire(2, t0));  // another user's bucket
  EXPECT_FALSE(limiter.TryAcquire(1, t0 + absl::Milliseconds(400)));
  EXPECT_TRUE(limiter.TryAcquire(1, t0 + absl::Milliseconds(500)));
  EXPECT_FALSE(limiter.TryAcquire(1, t0 + absl::Milliseconds(500)));
  // Never more than the burst, however long the pause.
  const absl::Time later = t0 + absl::Hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryAcquire(1, later));
  EXPECT_FALSE(limiter.TryAcquire(1, later));
}

TEST(UserRateLimiterTest, ZeroRateMeansUnlimited) {
  UserRateLimiter limiter(UserRateLimiter::Options{});
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(limiter.TryAcquire(1, absl::FromUnixSeconds(5)));
  }
}

TEST(UserRateLimiterTest, ForgetsIdleUsersBeyondTheBound) {
  UserRateLimiter::Options options;
  options.rate_per_second = 1;
  options.burst = 1;
  options.max_tracked_users = 32;
  UserRateLimiter limiter(options);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(limiter.TryAcquire(7, t0));
  for (uint64_t user = 100; user < 10000; ++user) {
    limiter.TryAcquire(user, t0 + absl::Seconds(10));
  }
  // User 7's bucket refilled long ago; forgetting it changed nothing.
  EXPECT_TRUE(limiter.TryAcquire(7, t0 + absl::Seconds(10)));
  EXPECT_FALSE(limiter.TryAcquire(7, t0 + absl::Seconds(10)));
}

}  // namespace
}  // namespace im::message
