#include "services/message/timer_queue.h"

namespace im::message {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

TimerQueue::TimerId TimerQueue::Schedule(
    absl::Time when, absl::AnyInvocable<void() &&> callback) {
  absl::MutexLock lock(&mu_);
  const TimerId id = next_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(callback));
  when_by_id_.emplace(id, when);
  return id;
}

bool TimerQueue::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  auto it = when_by_id_.find(id);
  if (it == when_by_id_.end()) return false;
  timers_.erase(std::make_pair(it->second, id));
  when_by_id_.erase(it);
  return true;
}

void TimerQueue::Run() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    if (stopping_) return;
    if (timers_.empty()) {
      mu_.Await(absl::Condition(
          +[](TimerQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
            return q->stopping_ || !q->timers_.empty();
          },
          this));
      continue;
    }
    const absl::Time first = timers_.begin()->first.first;
    const absl::Time now = absl::Now();
    if (first > now) {
      // Wakes early when a sooner timer is scheduled or on stop.
      const size_t count = timers_.size();
      struct Wake {
        TimerQueue* queue;
        absl::Time first;
        size_t count;
      } wake{this, first, count};
      mu_.AwaitWithDeadline(
          absl::Condition(
              +[](Wake* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                return w->queue->stopping_ ||
                       w->queue->timers_.size() != w->count ||
                       (!w->queue->timers_.empty() &&
                        w->queue->timers_.begin()->first.first != w->first);
              },
              &wake),
          first);
      continue;
    }
    auto node = timers_.extract(timers_.begin());
    when_by_id_.erase(node.key().second);
    mu_.Unlock();
    std::move(node.mapped())();
    mu_.Lock();
  }
}

}  // namespace im::message
