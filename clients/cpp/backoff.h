#ifndef IM_CLIENTS_CPP_BACKOFF_H_
#define IM_CLIENTS_CPP_BACKOFF_H_

#include "absl/random/random.h"
#include "absl/time/time.h"

namespace im::client {

// Exponential backoff with full jitter: the n-th wait (n = 0, 1, ...) is
// drawn uniformly from [0, min(max, initial * multiplier^n)], so clients
// that lost the same server do not come back in lock step. Not
// thread-safe (its owner's lock guards it).
class ExponentialBackoff {
 public:
  struct Options {
    absl::Duration initial = absl::Milliseconds(200);
    absl::Duration max = absl::Seconds(10);
    double multiplier = 2.0;
  };

  explicit ExponentialBackoff(const Options& options) : options_(options) {}

  // The next wait; each call raises the ceiling until it reaches max.
  absl::Duration Next();
  // The wait before retry number `attempt` (0 = the first) of something
  // that keeps its own count, e.g. one send among many; no state changes
  // but the random draw.
  absl::Duration DrawFor(int attempt);
  // The ceiling the wait of retry `attempt` is drawn under.
  absl::Duration CeilingFor(int attempt) const;
  // After a success: start from `initial` again.
  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  const Options options_;
  int attempts_ = 0;
  absl::BitGen rng_;
};

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_BACKOFF_H_
