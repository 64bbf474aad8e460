#ifndef IM_SERVICES_COMMON_WORKER_POOL_H_
#define IM_SERVICES_COMMON_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace im {

// A fixed set of threads draining a bounded FIFO queue. For blocking work
// (MySQL, password hashing) that must stay off gRPC's callback threads and
// must not grow without bound under a burst.
class WorkerPool {
 public:
  struct Options {
    std::string name = "worker";
    int threads = 4;
    // Tasks waiting beyond this are refused with RESOURCE_EXHAUSTED.
    size_t max_queue = 10000;
  };

  explicit WorkerPool(Options options);
  // Runs every task already queued, then joins the threads.
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`. RESOURCE_EXHAUSTED when the queue is full and
  // UNAVAILABLE after shutdown began; the task is then dropped unrun.
  absl::Status Submit(absl::AnyInvocable<void() &&> task);

  size_t queued() const;

 private:
  void Run();

  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace im

#endif  // IM_SERVICES_COMMON_WORKER_POOL_H_
