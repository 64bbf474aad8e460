#include "services/auth/login_throttle.h"

#include "gtest/gtest.h"
#include "services/common/retry_after.h"

namespace im::auth {
namespace {

class LoginThrottleTest : public ::testing::Test {
 protected:
  LoginThrottle::Options Options() {
    LoginThrottle::Options options;
    options.per_username = {3, absl::Seconds(30)};
    options.per_peer = {5, absl::Seconds(10)};
    return options;
  }
  LoginThrottle::Clock Clock() {
    return [this] { return now_; };
  }

  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

TEST_F(LoginThrottleTest, UsernameBucketRefusesAfterBurstWithRetryHint) {
  LoginThrottle throttle(Options(), Clock());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(throttle.TryAcquire("alice", "10.0.0.1").ok()) << i;
  }
  absl::Status refused = throttle.TryAcquire("alice", "10.0.0.2");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(), "too many failed attempts; retry in 30 s");
  EXPECT_EQ(RetryAfterOf(refused), absl::Seconds(30));
  // Another username from the same peer is still fine.
  EXPECT_TRUE(throttle.TryAcquire("bob", "10.0.0.1").ok());
}

TEST_F(LoginThrottleTest, RefillsOneAttemptPerInterval) {
  LoginThrottle throttle(Options(), Clock());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(throttle.TryAcquire("alice", "").ok());
  now_ += absl::Seconds(20);
  absl::Status refused = throttle.TryAcquire("alice", "");
  EXPECT_EQ(RetryAfterOf(refused), absl::Seconds(10));
  now_ += absl::Seconds(10);
  EXPECT_TRUE(throttle.TryAcquire("alice", "").ok());
  EXPECT_EQ(throttle.TryAcquire("alice", "").code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(LoginThrottleTest, PeerBucketRefusesAcrossUsernames) {
  LoginThrottle throttle(Options(), Clock());
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(throttle.TryAcquire("user" + std::to_string(i), "p").ok());
  }
  absl::Status refused = throttle.TryAcquire("fresh", "p");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryAfterOf(refused), absl::Seconds(10));
  EXPECT_TRUE(throttle.TryAcquire("fresh", "other-peer").ok());
}

TEST_F(LoginThrottleTest, RefusedAttemptChargesNeitherBucket) {
  LoginThrottle throttle(Options(), Clock());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(throttle.TryAcquire("alice", "p").ok());
  // alice is exhausted; these refusals must not drain peer p.
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(throttle.TryAcquire("alice", "p").ok());
  }
  EXPECT_TRUE(throttle.TryAcquire("bob", "p").ok());
  EXPECT_TRUE(throttle.TryAcquire("carol", "p").ok());
  EXPECT_FALSE(throttle.TryAcquire("dave", "p").ok());  // 5th peer attempt
}

TEST_F(LoginThrottleTest, SuccessResetsUsernameAndReturnsPeerAttempt) {
  LoginThrottle throttle(Options(), Clock());
  ASSERT_TRUE(throttle.TryAcquire("alice", "p").ok());
  ASSERT_TRUE(throttle.TryAcquire("alice", "p").ok());
  ASSERT_TRUE(throttle.TryAcquire("alice", "p").ok());
  throttle.RecordSuccess("alice", "p");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(throttle.TryAcquire("alice", "q").ok()) << i;
  }
  // Peer p spent 3 and got 1 back: 3 of 5 left.
  EXPECT_TRUE(throttle.TryAcquire("x1", "p").ok());
  EXPECT_TRUE(throttle.TryAcquire("x2", "p").ok());
  EXPECT_TRUE(throttle.TryAcquire("x3", "p").ok());
  EXPECT_FALSE(throttle.TryAcquire("x4", "p").ok());
}

TEST_F(LoginThrottleTest, TracksBoundedKeysAndDropsFullBuckets) {
  LoginThrottle::Options options = Options();
  options.max_tracked_keys = 4;
  LoginThrottle throttle(options, Clock());
  ASSERT_TRUE(throttle.TryAcquire("a1", "").ok());
  ASSERT_TRUE(throttle.TryAcquire("a2", "").ok());
  ASSERT_TRUE(throttle.TryAcquire("a3", "").ok());
  ASSERT_TRUE(throttle.TryAcquire("a4", "").ok());
  EXPECT_EQ(throttle.tracked_keys(), 4u);
  // Full table, every bucket in use: a new key fails closed.
  EXPECT_EQ(throttle.TryAcquire("a5", "").code(),
            absl::StatusCode::kResourceExhausted);
  // Once buckets have refilled they are dropped to make room.
  now_ += absl::Seconds(31);
  EXPECT_TRUE(throttle.TryAcquire("a5", "").ok());
  EXPECT_EQ(throttle.tracked_keys(), 1u);
}

TEST(PeerThrottleKeyTest, StripsPortsAndGroupsIpv6By64) {
  EXPECT_EQ(PeerThrottleKey("ipv4:10.1.2.3:5555"), "10.1.2.3");
  EXPECT_EQ(PeerThrottleKey("ipv6:[::1]:5555"), "::/64");
  EXPECT_EQ(PeerThrottleKey("ipv6:[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443"),
            "2001:db8:1:2::/64");
  EXPECT_EQ(PeerThrottleKey("ipv6:[2001:db8:1:2::9]:1"),
            PeerThrottleKey("ipv6:[2001:db8:1:2:ffff::1]:2"));
  EXPECT_EQ(PeerThrottleKey("ipv6:[::ffff:192.0.2.7]:80"), "192.0.2.7");
  EXPECT_EQ(PeerThrottleKey("unix:/tmp/sock"), "unix");
  EXPECT_EQ(PeerThrottleKey("ipv6:[not-an-address]:1"), "not-an-address");
}

}  // namespace
}  // namespace im::auth
