#ifndef IM_SERVICES_MESSAGE_TIMER_QUEUE_H_
#define IM_SERVICES_MESSAGE_TIMER_QUEUE_H_

#include <cstdint>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace im::message {

// Runs callbacks at given times on one thread of its own (stream token
// expiry, long-poll timeouts, retry delays). Callbacks must be short and
// must not block. Thread-safe.
class TimerQueue {
 public:
  using TimerId = uint64_t;

  TimerQueue();
  // Drops the timers that have not fired and joins the thread.
  ~TimerQueue();

  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `callback` at `when` (at once if it is past). Never returns 0.
  TimerId Schedule(absl::Time when, absl::AnyInvocable<void() &&> callback);
  // True when the timer was removed before it ran. A callback already
  // running is not waited for.
  bool Cancel(TimerId id);

 private:
  void Run();

  absl::Mutex mu_;
  // Ordered by (when, id) so equal times fire in scheduling order.
  std::map<std::pair<absl::Time, TimerId>, absl::AnyInvocable<void() &&>>
      timers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TimerId, absl::Time> when_by_id_ ABSL_GUARDED_BY(mu_);
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_TIMER_QUEUE_H_
