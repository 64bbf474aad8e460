#ifndef IM_CLIENTS_CPP_CLIENT_RUNTIME_H_
#define IM_CLIENTS_CPP_CLIENT_RUNTIME_H_

#include <memory>

#include "services/common/worker_pool.h"
#include "services/message/timer_queue.h"

namespace im::client {

// The background threads of one or many clients: a timer thread (token
// refresh, reconnect and retry delays; callbacks only schedule or start
// non-blocking work) and a small pool for blocking RPCs (token renewal,
// history reads that fill gaps). A process running many sessions (imbench)
// shares one runtime instead of starting threads per session. Must outlive
// every client using it (clients hold it by shared_ptr).
class ClientRuntime {
 public:
  struct Options {
    int worker_threads = 2;
    size_t max_queued_tasks = 100000;
  };

  explicit ClientRuntime(const Options& options);
  ClientRuntime() : ClientRuntime(Options()) {}

  static std::shared_ptr<ClientRuntime> Make(const Options& options) {
    return std::make_shared<ClientRuntime>(options);
  }
  static std::shared_ptr<ClientRuntime> Make() { return Make(Options()); }

  message::TimerQueue& timers() { return timers_; }
  WorkerPool& workers() { return workers_; }

 private:
  // Workers first: destroyed last, after the timers stopped queueing work.
  WorkerPool workers_;
  message::TimerQueue timers_;
};

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_CLIENT_RUNTIME_H_
