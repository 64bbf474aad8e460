#include "clients/cpp/chat_event_queue.h"

#include <utility>

namespace im::client {

ChatSession::EventCallback ChatEventQueue::Callback() {
  return [this](ChatEvent event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  };
}

std::optional<ChatEvent> ChatEventQueue::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto has_event = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !events_.empty();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&has_event), timeout)) {
    return std::nullopt;
  }
  ChatEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

size_t ChatEventQueue::size() const {
  absl::MutexLock lock(&mu_);
  return events_.size();
}

}  // namespace im::client
