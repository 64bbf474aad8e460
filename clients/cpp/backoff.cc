#include "clients/cpp/backoff.h"

#include <algorithm>
#include <cmath>

namespace im::client {

absl::Duration ExponentialBackoff::CeilingFor(int attempt) const {
  // Computed in double seconds and capped before converting, so a long run
  // of failures cannot overflow.
  const double initial = absl::ToDoubleSeconds(options_.initial);
  const double max = absl::ToDoubleSeconds(options_.max);
  const double grown =
      initial * std::pow(std::max(1.0, options_.multiplier), std::max(0, attempt));
  return absl::Seconds(std::min(max, grown));
}

absl::Duration ExponentialBackoff::Next() {
  const absl::Duration wait = DrawFor(attempts_);
  if (attempts_ < 64) ++attempts_;
  return wait;
}

absl::Duration ExponentialBackoff::DrawFor(int attempt) {
  const double seconds = absl::ToDoubleSeconds(CeilingFor(std::min(attempt, 64)));
  if (seconds <= 0) return absl::ZeroDuration();
  return absl::Seconds(absl::Uniform(absl::IntervalClosed, rng_, 0.0, seconds));
}

}  // namespace im::client
