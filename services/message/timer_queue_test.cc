#include "services/message/timer_queue.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace im::message {
namespace {

TEST(TimerQueueTest, RunsInTimeOrderAndCancels) {
  TimerQueue timers;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification done;
  const absl::Time now = absl::Now();
  timers.Schedule(now + absl::Milliseconds(60), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(3);
    done.Notify();
  });
  TimerQueue::TimerId cancelled = timers.Schedule(
      now + absl::Milliseconds(30), [&] {
        absl::MutexLock lock(&mu);
        order.push_back(99);
      });
  timers.Schedule(now + absl::Milliseconds(20), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(2);
  });
  timers.Schedule(now - absl::Seconds(1), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(1);
  });
  EXPECT_TRUE(timers.Cancel(cancelled));
  EXPECT_FALSE(timers.Cancel(cancelled));
  done.WaitForNotification();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, std::vector<int>({1, 2, 3}));
}

TEST(TimerQueueTest, DestructionDropsPendingTimers) {
  bool ran = false;
  {
    TimerQueue timers;
    timers.Schedule(absl::Now() + absl::Hours(1), [&] { ran = true; });
  }
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace im::message
