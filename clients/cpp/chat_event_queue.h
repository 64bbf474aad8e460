#ifndef IM_CLIENTS_CPP_CHAT_EVENT_QUEUE_H_
#define IM_CLIENTS_CPP_CHAT_EVENT_QUEUE_H_

#include <cstddef>
#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/cpp/chat_session.h"

namespace im::client {

// The pull side of ChatSession's callbacks: Callback() appends each event,
// and any thread takes them in order with Next. Unbounded: the application
// must keep taking (a slow taker grows memory instead of pausing the
// stream). Thread-safe; must outlive the session it is fed by.
class ChatEventQueue {
 public:
  ChatSession::EventCallback Callback();

  // The oldest event, waiting up to `timeout`; nullopt on timeout.
  std::optional<ChatEvent> Next(absl::Duration timeout);
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  std::deque<ChatEvent> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_CHAT_EVENT_QUEUE_H_
