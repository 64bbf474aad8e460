#include "services/common/worker_pool.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace im {
namespace {

TEST(WorkerPoolTest, RunsEveryQueuedTaskBeforeDestruction) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool({"test", 2, 1000});
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(pool.Submit([&] { ran.fetch_add(1); }).ok());
    }
  }
  EXPECT_EQ(ran.load(), 500);
}

TEST(WorkerPoolTest, RefusesBeyondQueueBound) {
  absl::Notification release;
  absl::Notification started;
  WorkerPool pool({"test", 1, 2});
  ASSERT_TRUE(pool.Submit([&] {
                    started.Notify();
                    release.WaitForNotification();
                  }).ok());
  started.WaitForNotification();
  EXPECT_TRUE(pool.Submit([] {}).ok());
  EXPECT_TRUE(pool.Submit([] {}).ok());
  EXPECT_EQ(pool.Submit([] {}).code(), absl::StatusCode::kResourceExhausted);
  release.Notify();
}

}  // namespace
}  // namespace im
