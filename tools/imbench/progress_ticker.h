#ifndef IM_TOOLS_IMBENCH_PROGRESS_TICKER_H_
#define IM_TOOLS_IMBENCH_PROGRESS_TICKER_H_

#include <functional>
#include <iosfwd>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace im::imbench {

// Prints `line(elapsed)` to `out` once per `period` until destroyed (the
// progress line of long runs). Does nothing when `out` is null.
class ProgressTicker {
 public:
  ProgressTicker(std::ostream* out,
                 std::function<std::string(absl::Duration elapsed)> line,
                 absl::Duration period = absl::Seconds(1));
  ~ProgressTicker();

  ProgressTicker(const ProgressTicker&) = delete;
  ProgressTicker& operator=(const ProgressTicker&) = delete;

 private:
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace im::imbench

#endif  // IM_TOOLS_IMBENCH_PROGRESS_TICKER_H_
