#include "clients/cpp/backoff.h"

#include "gtest/gtest.h"

namespace im::client {
namespace {

TEST(ExponentialBackoffTest, WaitsStayUnderADoublingCappedCeiling) {
  ExponentialBackoff backoff(
      {absl::Milliseconds(100), absl::Milliseconds(1000), 2.0});
  const absl::Duration ceilings[] = {
      absl::Milliseconds(100), absl::Milliseconds(200),
      absl::Milliseconds(400), absl::Milliseconds(800),
      absl::Milliseconds(1000), absl::Milliseconds(1000)};
  for (absl::Duration ceiling : ceilings) {
    EXPECT_EQ(backoff.CeilingFor(backoff.attempts()), ceiling);
    const absl::Duration wait = backoff.Next();
    EXPECT_GE(wait, absl::ZeroDuration());
    EXPECT_LE(wait, ceiling);
  }
  backoff.Reset();
  EXPECT_EQ(backoff.attempts(), 0);
  EXPECT_EQ(backoff.CeilingFor(0), absl::Milliseconds(100));
}

TEST(ExponentialBackoffTest, FullJitterSpreadsOverTheWholeRange) {
  ExponentialBackoff backoff({absl::Seconds(1), absl::Seconds(1), 2.0});
  int low = 0, high = 0;
  for (int i = 0; i < 1000; ++i) {
    const absl::Duration wait = backoff.DrawFor(0);
    if (wait < absl::Milliseconds(250)) ++low;
    if (wait > absl::Milliseconds(750)) ++high;
  }
  // Uniform over [0, 1 s]: about 250 each; far from it means no jitter.
  EXPECT_GT(low, 150);
  EXPECT_GT(high, 150);
}

TEST(ExponentialBackoffTest, ManyFailuresDoNotOverflow) {
  ExponentialBackoff backoff({absl::Milliseconds(1), absl::Seconds(30), 2.0});
  for (int i = 0; i < 1000; ++i) EXPECT_LE(backoff.Next(), absl::Seconds(30));
  EXPECT_EQ(backoff.CeilingFor(10000), absl::Seconds(30));
}

}  // namespace
}  // namespace im::client
