#include "tools/imbench/progress_ticker.h"

#include <ostream>
#include <utility>

#include "absl/time/clock.h"

namespace im::imbench {

ProgressTicker::ProgressTicker(
    std::ostream* out, std::function<std::string(absl::Duration elapsed)> line,
    absl::Duration period) {
  if (out == nullptr) return;
  thread_ = std::thread([this, out, line = std::move(line), period] {
    const absl::Time start = absl::Now();
    while (!stop_.WaitForNotificationWithTimeout(period)) {
      *out << "  " << line(absl::Now() - start) << std::endl;
    }
  });
}

ProgressTicker::~ProgressTicker() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace im::imbench
