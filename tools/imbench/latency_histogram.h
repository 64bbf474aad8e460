#ifndef IM_TOOLS_IMBENCH_LATENCY_HISTOGRAM_H_
#define IM_TOOLS_IMBENCH_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace im::imbench {

// Latencies in log-spaced buckets: each power of two of microseconds is
// split into kSubBuckets equal parts, so a reported percentile is within
// about 1/kSubBuckets (3%) of the true value, from 1 us to ~2^40 us. Record
// is lock-free (many threads at once); readers see a consistent-enough
// snapshot (each bucket atomically).
class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 5;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  static constexpr int kOctaves = 40;

  void Record(absl::Duration latency);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  absl::Duration max() const;
  absl::Duration mean() const;
  // The value at fraction q (0..1] of the recorded latencies, as the upper
  // edge of its bucket (capped at the exact max); zero when empty.
  absl::Duration Percentile(double q) const;

 private:
  static int BucketOf(uint64_t micros);
  static uint64_t UpperEdge(int bucket);

  std::array<std::atomic<uint64_t>, kOctaves * kSubBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
  std::atomic<uint64_t> max_micros_{0};
};

}  // namespace im::imbench

#endif  // IM_TOOLS_IMBENCH_LATENCY_HISTOGRAM_H_
