#include "services/auth/revocation_feed.h"

#include <utility>

#include "spdlog/spdlog.h"

namespace im::auth {

RevocationFeed::RevocationFeed(const Options& options,
                               storage::SessionStore* store,
                               RevocationSet* local, Clock clock)
    : options_(options),
      store_(store),
      local_(local),
      clock_(std::move(clock)) {}

absl::StatusOr<std::unique_ptr<RevocationFeed>> RevocationFeed::Create(
    const Options& options, storage::SessionStore* store, RevocationSet* local,
    Clock clock) {
  std::unique_ptr<RevocationFeed> feed(
      new RevocationFeed(options, store, local, std::move(clock)));
  const absl::Time now = feed->clock_();
  {
    absl::MutexLock lock(&feed->mu_);
    feed->next_poll_since_ = now - options.retention;
  }
  absl::Status loaded = feed->PollOnce();
  if (!loaded.ok()) return loaded;
  feed->poller_ = std::thread([f = feed.get()] { f->RunPoller(); });
  return feed;
}

RevocationFeed::~RevocationFeed() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (poller_.joinable()) poller_.join();
  Close();
}

void RevocationFeed::Publish(
    const std::vector<storage::RevokedSessionRecord>& revoked) {
  if (revoked.empty()) return;
  absl::MutexLock lock(&mu_);
  PublishLocked(revoked);
}

void RevocationFeed::PublishLocked(
    const std::vector<storage::RevokedSessionRecord>& revoked) {
  std::vector<storage::RevokedSessionRecord> fresh;
  for (const storage::RevokedSessionRecord& record : revoked) {
    if (local_->IsRevoked(record.session_id)) continue;
    local_->Add(record.session_id, record.user_id, record.revoked_at);
    fresh.push_back(record);
  }
  if (fresh.empty() || closed_) return;
  for (Subscriber* subscriber : subscribers_) subscriber->OnRevoked(fresh);
}

bool RevocationFeed::Subscribe(Subscriber* subscriber) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  subscribers_.insert(subscriber);
  return true;
}

void RevocationFeed::Unsubscribe(Subscriber* subscriber) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(subscriber);
}

absl::StatusOr<std::vector<storage::RevokedSessionRecord>>
RevocationFeed::Snapshot() {
  return store_->ListRevokedSince(clock_() - options_.retention);
}

void RevocationFeed::Close() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  closed_ = true;
  for (Subscriber* subscriber : subscribers_) subscriber->OnFeedClosed();
  subscribers_.clear();
}

absl::Status RevocationFeed::PollOnce() {
  const absl::Time started = clock_();
  absl::Time since;
  {
    absl::MutexLock lock(&mu_);
    since = next_poll_since_;
  }
  absl::StatusOr<std::vector<storage::RevokedSessionRecord>> revoked =
      store_->ListRevokedSince(since);
  if (!revoked.ok()) return revoked.status();
  local_->PruneOlderThan(started - options_.retention);
  absl::MutexLock lock(&mu_);
  std::vector<storage::RevokedSessionRecord> recent;
  for (const storage::RevokedSessionRecord& record : *revoked) {
    if (record.revoked_at >= started - options_.retention) {
      recent.push_back(record);
    }
  }
  PublishLocked(recent);
  next_poll_since_ = started - options_.poll_overlap;
  return absl::OkStatus();
}

void RevocationFeed::RunPoller() {
  // Without polling the thread still prunes the local set now and then.
  const absl::Duration interval = options_.poll_interval > absl::ZeroDuration()
                                      ? options_.poll_interval
                                      : absl::Minutes(1);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval);
      if (stopping_) return;
    }
    if (options_.poll_interval > absl::ZeroDuration()) {
      absl::Status polled = PollOnce();
      if (!polled.ok()) {
        spdlog::warn("revocation poll failed: {}", polled.ToString());
      }
    } else {
      local_->PruneOlderThan(clock_() - options_.retention);
    }
  }
}

}  // namespace im::auth
