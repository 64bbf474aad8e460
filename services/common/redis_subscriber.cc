#include "services/common/redis_subscriber.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "spdlog/spdlog.h"

namespace im {
namespace {

// How often a blocked read wakes up to look at the stop flag.
constexpr absl::Duration kStopCheck = absl::Milliseconds(100);

bool IsPush(const RedisReply& reply, absl::string_view kind) {
  return reply.type == RedisReply::Type::kArray && !reply.elements.empty() &&
         reply.elements[0].type == RedisReply::Type::kString &&
         reply.elements[0].str == kind;
}

}  // namespace

RedisBackoff::RedisBackoff(absl::Duration min, absl::Duration max)
    : min_(min), max_(std::max(min, max)), current_(min) {}

absl::Duration RedisBackoff::Next() {
  absl::BitGen gen;
  const absl::Duration wait =
      current_ / 2 + absl::Uniform(gen, 0.0, 0.5) * current_;
  current_ = std::min(current_ * 2, max_);
  return wait;
}

absl::StatusOr<std::unique_ptr<RedisSubscriber>> RedisSubscriber::Start(
    const Options& options, Callbacks callbacks) {
  if (options.channels.empty() || !callbacks.on_message) {
    return absl::InvalidArgumentError(
        "a Redis subscriber needs channels and a message callback");
  }
  auto subscriber = std::unique_ptr<RedisSubscriber>(
      new RedisSubscriber(options, std::move(callbacks)));
  subscriber->thread_ = std::thread([s = subscriber.get()] { s->Run(); });
  return subscriber;
}

RedisSubscriber::RedisSubscriber(const Options& options, Callbacks callbacks)
    : options_(options), callbacks_(std::move(callbacks)) {}

RedisSubscriber::~RedisSubscriber() { Stop(); }

void RedisSubscriber::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool RedisSubscriber::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void RedisSubscriber::Run() {
  RedisBackoff backoff(options_.min_backoff, options_.max_backoff);
  while (!stopping()) {
    absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
        RedisConnection::Connect(options_.connection);
    if (connection.ok()) {
      Serve(**connection);
      if (subscribed_.exchange(false)) {
        // It worked for a while: the first retry comes soon.
        backoff.Reset();
        losses_.fetch_add(1);
        if (callbacks_.on_lost) callbacks_.on_lost();
      }
    } else {
      spdlog::warn("Redis subscriber: {}", connection.status().ToString());
    }
    // Waits in small steps so Stop stays quick.
    absl::Time until = absl::Now() + backoff.Next();
    while (!stopping() && absl::Now() < until) {
      absl::SleepFor(std::min(kStopCheck, until - absl::Now()));
    }
  }
}

void RedisSubscriber::Serve(RedisConnection& connection) {
  if (!options_.client_name.empty()) {
    connection.Append({"CLIENT", "SETNAME", options_.client_name});
  }
  std::vector<std::string> subscribe = {"SUBSCRIBE"};
  subscribe.insert(subscribe.end(), options_.channels.begin(),
                   options_.channels.end());
  connection.Append(subscribe);
  absl::flat_hash_set<std::string> pending(options_.channels.begin(),
                                           options_.channels.end());
  absl::Time last_heard = absl::Now();
  bool ping_outstanding = false;
  while (!stopping()) {
    absl::StatusOr<std::optional<RedisReply>> reply =
        connection.ReadReplyWithin(kStopCheck);
    if (!reply.ok()) {
      spdlog::warn("Redis subscriber: {}", reply.status().ToString());
      return;
    }
    const absl::Time now = absl::Now();
    if (!reply->has_value()) {
      const absl::Duration quiet = now - last_heard;
      if (ping_outstanding &&
          quiet > options_.ping_interval + options_.connection.io_timeout) {
        spdlog::warn("Redis subscriber: no answer to PING; reconnecting");
        return;
      }
      if (!ping_outstanding && quiet >= options_.ping_interval) {
        connection.Append({"PING"});
        ping_outstanding = true;
      }
      continue;
    }
    last_heard = now;
    const RedisReply& got = **reply;
    if (IsPush(got, "message") && got.elements.size() == 3) {
      callbacks_.on_message(got.elements[1].str, got.elements[2].str);
    } else if (IsPush(got, "pong") || got.type == RedisReply::Type::kStatus) {
      ping_outstanding = false;
    } else if (IsPush(got, "subscribe") && got.elements.size() >= 2) {
      pending.erase(got.elements[1].str);
      if (pending.empty() && !subscribed_.exchange(true)) {
        spdlog::info("Redis subscriber: subscribed to {} channel(s)",
                     options_.channels.size());
        if (callbacks_.on_subscribed) callbacks_.on_subscribed();
      }
    } else if (got.is_error()) {
      spdlog::warn("Redis subscriber: {}", got.str);
      return;
    }
  }
}

}  // namespace im
