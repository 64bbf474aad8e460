#ifndef IM_SERVICES_COMMON_REDIS_SUBSCRIBER_H_
#define IM_SERVICES_COMMON_REDIS_SUBSCRIBER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/redis_connection.h"

namespace im {

// Jittered exponential backoff: each Next() waits a random time in
// [b/2, b], b doubling from `min` up to `max`; Reset() after a success.
class RedisBackoff {
 public:
  RedisBackoff(absl::Duration min, absl::Duration max);
  absl::Duration Next();
  void Reset() { current_ = min_; }

 private:
  const absl::Duration min_;
  const absl::Duration max_;
  absl::Duration current_;
};

// One connection subscribed to a fixed set of pub/sub channels, kept up by
// a thread of its own: it reconnects with backoff after any failure and
// pings while idle, so a dead server is noticed within about
// ping_interval + io_timeout. Redis pub/sub delivers nothing published
// while the connection is down: on_lost tells the owner so it can recover
// what it missed once on_subscribed comes again.
class RedisSubscriber {
 public:
  struct Options {
    RedisConnection::Options connection;
    std::vector<std::string> channels;
    // CLIENT SETNAME on each connection (shows in CLIENT LIST); empty =
    // none.
    std::string client_name;
    absl::Duration ping_interval = absl::Seconds(1);
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
  };
  // All run on the subscriber's thread, one at a time.
  struct Callbacks {
    // A message on one of the channels, in the order Redis sent them.
    std::function<void(absl::string_view channel, absl::string_view payload)>
        on_message;
    // Subscribed to every channel (after each connect): what is published
    // from now on arrives.
    std::function<void()> on_subscribed;
    // The connection broke after on_subscribed: messages were lost.
    std::function<void()> on_lost;
  };

  // INVALID_ARGUMENT without channels or on_message. Connecting happens on
  // the thread, so Start succeeds while Redis is down.
  static absl::StatusOr<std::unique_ptr<RedisSubscriber>> Start(
      const Options& options, Callbacks callbacks);
  // Stop().
  ~RedisSubscriber();

  // Joins the thread; no callback runs after it returns. Idempotent.
  void Stop();

  bool subscribed() const { return subscribed_.load(); }
  // Connections that broke after subscribing (for metrics and tests).
  uint64_t losses() const { return losses_.load(); }

 private:
  RedisSubscriber(const Options& options, Callbacks callbacks);
  void Run();
  // Subscribes and reads until the connection breaks or Stop.
  void Serve(RedisConnection& connection);
  bool stopping() const;

  const Options options_;
  const Callbacks callbacks_;
  std::atomic<bool> subscribed_{false};
  std::atomic<uint64_t> losses_{0};
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace im

#endif  // IM_SERVICES_COMMON_REDIS_SUBSCRIBER_H_
