#include "tools/imbench/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace im::imbench {

// Values below kSubBuckets us get one bucket per microsecond (octave 0);
// above, octave k covers [2^(k+4), 2^(k+5)) us in kSubBuckets steps.
int LatencyHistogram::BucketOf(uint64_t micros) {
  if (micros < kSubBuckets) return static_cast<int>(micros);
  const int top_bit = 63 - __builtin_clzll(micros);  // >= kSubBucketBits
  const int octave = top_bit - kSubBucketBits + 1;
  if (octave >= kOctaves) return kOctaves * kSubBuckets - 1;
  const int sub = static_cast<int>((micros >> (top_bit - kSubBucketBits)) &
                                   (kSubBuckets - 1));
  return octave * kSubBuckets + sub;
}

// The largest value a bucket holds.
uint64_t LatencyHistogram::UpperEdge(int bucket) {
  const int octave = bucket / kSubBuckets;
  const uint64_t sub = static_cast<uint64_t>(bucket % kSubBuckets);
  if (octave == 0) return sub;
  const int shift = octave - 1;
  return ((uint64_t{kSubBuckets} + sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(absl::Duration latency) {
  const int64_t micros = absl::ToInt64Microseconds(latency);
  const uint64_t value = micros < 0 ? 0 : static_cast<uint64_t>(micros);
  buckets_[BucketOf(value)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(value, std::memory_order_relaxed);
  uint64_t seen = max_micros_.load(std::memory_order_relaxed);
  while (value > seen &&
         !max_micros_.compare_exchange_weak(seen, value,
                                            std::memory_order_relaxed)) {
  }
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) {
    buckets_[i].fetch_add(other.buckets_[i].load(std::memory_order_relaxed),
                          std::memory_order_relaxed);
  }
  count_.fetch_add(other.count(), std::memory_order_relaxed);
  sum_micros_.fetch_add(other.sum_micros_.load(std::memory_order_relaxed),
                        std::memory_order_relaxed);
  const uint64_t other_max = other.max_micros_.load(std::memory_order_relaxed);
  uint64_t seen = max_micros_.load(std::memory_order_relaxed);
  while (other_max > seen &&
         !max_micros_.compare_exchange_weak(seen, other_max,
                                            std::memory_order_relaxed)) {
  }
}

absl::Duration LatencyHistogram::max() const {
  return absl::Microseconds(max_micros_.load(std::memory_order_relaxed));
}

absl::Duration LatencyHistogram::mean() const {
  const uint64_t n = count();
  if (n == 0) return absl::ZeroDuration();
  return absl::Microseconds(
      static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / n);
}

absl::Duration LatencyHistogram::Percentile(double q) const {
  const uint64_t n = count();
  if (n == 0) return absl::ZeroDuration();
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * n)));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      return std::min(absl::Microseconds(UpperEdge(static_cast<int>(i))),
                      max());
    }
  }
  return max();
}

}  // namespace im::imbench
