#include "tools/imbench/latency_histogram.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace im::imbench {
namespace {

TEST(LatencyHistogramTest, EmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(0.99), absl::ZeroDuration());
  EXPECT_EQ(h.max(), absl::ZeroDuration());
}

TEST(LatencyHistogramTest, PercentilesWithinBucketPrecision) {
  LatencyHistogram h;
  // 1..10000 us, uniform: p50 ~ 5000 us, p99 ~ 9900 us.
  for (int us = 1; us <= 10000; ++us) h.Record(absl::Microseconds(us));
  EXPECT_EQ(h.count(), 10000u);
  auto near = [](absl::Duration got, double want_us) {
    const double us = absl::ToDoubleMicroseconds(got);
    return us >= want_us && us <= want_us * 1.04;
  };
  EXPECT_TRUE(near(h.Percentile(0.5), 5000)) << h.Percentile(0.5);
  EXPECT_TRUE(near(h.Percentile(0.9), 9000)) << h.Percentile(0.9);
  EXPECT_TRUE(near(h.Percentile(0.99), 9900)) << h.Percentile(0.99);
  EXPECT_EQ(h.Percentile(1.0), absl::Microseconds(10000));
  EXPECT_EQ(h.max(), absl::Microseconds(10000));
  EXPECT_NEAR(absl::ToDoubleMicroseconds(h.mean()), 5000.5, 0.01);
}

TEST(LatencyHistogramTest, SmallValuesAreExactAndOutliersShowInTheTail) {
  LatencyHistogram h;
  for (int i = 0; i < 999; ++i) h.Record(absl::Microseconds(7));
  h.Record(absl::Seconds(3));
  EXPECT_EQ(h.Percentile(0.5), absl::Microseconds(7));
  EXPECT_EQ(h.Percentile(0.999), absl::Microseconds(7));
  EXPECT_EQ(h.Percentile(0.9999), absl::Seconds(3));
  EXPECT_EQ(h.max(), absl::Seconds(3));
}

TEST(LatencyHistogramTest, ConcurrentRecordsAndMergeCountEverything) {
  LatencyHistogram a, b;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&a] {
      for (int i = 0; i < 10000; ++i) a.Record(absl::Milliseconds(1));
    });
  }
  for (std::thread& thread : threads) thread.join();
  b.Record(absl::Milliseconds(50));
  a.Merge(b);
  EXPECT_EQ(a.count(), 40001u);
  EXPECT_EQ(a.max(), absl::Milliseconds(50));
  EXPECT_LE(a.Percentile(0.5), absl::Microseconds(1032));
  EXPECT_GE(a.Percentile(0.5), absl::Microseconds(1000));
}

}  // namespace
}  // namespace im::imbench
