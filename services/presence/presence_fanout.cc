#include "services/presence/presence_fanout.h"

#include <string>
#include <utility>

#include "absl/hash/hash.h"
#include "services/presence/presence_proto.h"

namespace im::presence {
namespace {

// Batches up to this size keep their messages allocated between writes.
constexpr int kKeptBatchSize = 16;

size_t Fingerprint(const v1::Presence& presence) {
  return absl::Hash<std::string>{}(presence.SerializeAsString());
}

}  // namespace

PresenceSubscription::PresenceSubscription(uint64_t viewer,
                                           uint64_t session_id,
                                           std::vector<uint64_t> watched,
                                           PresenceStreamWriter* writer)
    : viewer_(viewer),
      session_id_(session_id),
      watched_(std::move(watched)),
      writer_(writer) {}

bool PresenceSubscription::finishing() const {
  absl::MutexLock lock(&mu_);
  return finish_requested_;
}

absl::Time PresenceSubscription::visibility_checked_at() const {
  absl::MutexLock lock(&mu_);
  return visibility_checked_at_;
}

void PresenceSubscription::RequestFinish(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (finish_requested_) return;
    finish_requested_ = true;
    finish_status_ = status;
    // With a write outstanding, OnWriteDone hands Finish over.
    if (write_in_flight_) return;
    finished_ = true;
  }
  writer_->FinishStream(status);
}

void PresenceSubscription::OnWriteDone(bool ok) {
  bool finish = false;
  bool relist = false;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    // Clear() keeps every message for reuse; a snapshot's worth is freed.
    if (batch_.presences_size() > kKeptBatchSize) {
      batch_ = v1::PresenceBatch();
    } else {
      batch_.Clear();
    }
    if (!ok && !finish_requested_) {
      // The client is gone; the status only completes the call.
      finish_requested_ = true;
      finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED,
                                    "subscriber went away");
    }
    if (finish_requested_) {
      if (!finished_) {
        finished_ = true;
        finish = true;
        status = finish_status_;
      }
    } else if (!pending_.empty() && !dirty_listed_) {
      dirty_listed_ = true;
      relist = true;
    }
  }
  if (finish) {
    writer_->FinishStream(status);
  } else if (relist && fanout_ != nullptr) {
    fanout_->Relist(shared_from_this());
  }
}

bool PresenceSubscription::MarkPending(uint64_t user) {
  absl::MutexLock lock(&mu_);
  if (finish_requested_) return false;
  pending_.insert(user);
  if (dirty_listed_ || write_in_flight_ || !started_) return false;
  dirty_listed_ = true;
  return true;
}

std::vector<uint64_t> PresenceSubscription::SetVisible(
    absl::flat_hash_set<uint64_t> visible, absl::Time checked_at) {
  std::vector<uint64_t> changed;
  absl::MutexLock lock(&mu_);
  for (uint64_t id : watched_) {
    if (visible.contains(id) != visible_.contains(id)) changed.push_back(id);
  }
  visible_ = std::move(visible);
  visibility_checked_at_ = checked_at;
  return changed;
}

void PresenceSubscription::WriteSnapshot(const PresenceLeaseTable& table) {
  {
    absl::MutexLock lock(&mu_);
    if (finish_requested_ || started_) return;
    started_ = true;
    batch_.Clear();
    batch_.set_snapshot(true);
    std::vector<uint64_t> visible_ids;
    for (uint64_t id : watched_) {
      if (visible_.contains(id)) visible_ids.push_back(id);
    }
    const std::vector<UserPresence> views = table.Get(visible_ids);
    size_t next_view = 0;
    for (uint64_t id : watched_) {
      v1::Presence* presence = batch_.add_presences();
      if (next_view < views.size() && views[next_view].user_id == id) {
        FillPresence(views[next_view++], presence);
      } else {
        FillUnknown(id, presence);
      }
      sent_[id] = Fingerprint(*presence);
    }
    // The snapshot shows everything marked so far.
    pending_.clear();
    write_in_flight_ = true;
  }
  writer_->WriteBatch(&batch_);
}

void PresenceSubscription::AppendChangedLocked(
    const PresenceLeaseTable& table, absl::Span<const uint64_t> users) {
  std::vector<uint64_t> visible_ids;
  for (uint64_t id : users) {
    if (visible_.contains(id)) visible_ids.push_back(id);
  }
  const std::vector<UserPresence> views = table.Get(visible_ids);
  size_t next_view = 0;
  v1::Presence presence;
  for (uint64_t id : users) {
    presence.Clear();
    if (next_view < views.size() && views[next_view].user_id == id) {
      FillPresence(views[next_view++], &presence);
    } else {
      FillUnknown(id, &presence);
    }
    const size_t fingerprint = Fingerprint(presence);
    size_t& sent = sent_[id];
    if (sent == fingerprint) continue;
    sent = fingerprint;
    *batch_.add_presences() = std::move(presence);
  }
}

size_t PresenceSubscription::Flush(const PresenceLeaseTable& table) {
  size_t written = 0;
  {
    absl::MutexLock lock(&mu_);
    dirty_listed_ = false;
    if (finish_requested_ || write_in_flight_ || !started_ ||
        pending_.empty()) {
      return 0;
    }
    std::vector<uint64_t> users(pending_.begin(), pending_.end());
    pending_.clear();
    batch_.Clear();
    AppendChangedLocked(table, users);
    written = batch_.presences_size();
    if (written == 0) return 0;
    write_in_flight_ = true;
  }
  writer_->WriteBatch(&batch_);
  return written;
}

PresenceFanout::PresenceFanout(const Options& options,
                               const PresenceLeaseTable* table)
    : options_(options), table_(table) {
  flusher_ = std::thread([this] { Run(); });
}

PresenceFanout::~PresenceFanout() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  flusher_.join();
}

void PresenceFanout::Add(std::shared_ptr<PresenceSubscription> subscription,
                         absl::flat_hash_set<uint64_t> visible,
                         absl::Time checked_at) {
  PresenceSubscription* raw = subscription.get();
  bool closed;
  {
    absl::MutexLock lock(&mu_);
    closed = closed_;
    if (!closed) {
      raw->fanout_ = this;
      raw->SetVisible(std::move(visible), checked_at);
      for (uint64_t id : raw->watched()) {
        // Invisible users are watched too, so a visibility refresh needs no
        // re-indexing; their batches say UNKNOWN, which never changes.
        watchers_[id].insert(raw);
      }
      subscriptions_[raw] = std::move(subscription);
      ++per_viewer_[raw->viewer()];
    }
  }
  if (closed) {
    raw->RequestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    "presence is shutting down"));
    return;
  }
  raw->WriteSnapshot(*table_);
  // The stream may have ended before it was registered; its OnDone may
  // then have run Remove already.
  if (raw->finishing()) Remove(raw);
}

void PresenceFanout::Remove(PresenceSubscription* subscription) {
  std::shared_ptr<PresenceSubscription> keep;
  absl::MutexLock lock(&mu_);
  auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end()) return;
  keep = std::move(it->second);
  subscriptions_.erase(it);
  for (uint64_t id : subscription->watched()) {
    auto watchers = watchers_.find(id);
    if (watchers == watchers_.end()) continue;
    watchers->second.erase(subscription);
    if (watchers->second.empty()) watchers_.erase(watchers);
  }
  if (--per_viewer_[subscription->viewer()] == 0) {
    per_viewer_.erase(subscription->viewer());
  }
}

void PresenceFanout::UpdateVisible(
    const std::shared_ptr<PresenceSubscription>& subscription,
    absl::flat_hash_set<uint64_t> visible, absl::Time checked_at) {
  const std::vector<uint64_t> changed =
      subscription->SetVisible(std::move(visible), checked_at);
  bool list = false;
  for (uint64_t id : changed) list |= subscription->MarkPending(id);
  if (list) Relist(subscription);
}

void PresenceFanout::OnUsersChanged(absl::Span<const uint64_t> users) {
  absl::MutexLock lock(&mu_);
  for (uint64_t id : users) {
    auto it = watchers_.find(id);
    if (it == watchers_.end()) continue;
    for (PresenceSubscription* subscription : it->second) {
      if (subscription->MarkPending(id)) {
        dirty_.push_back(subscriptions_.at(subscription));
      }
    }
  }
}

void PresenceFanout::Relist(
    std::shared_ptr<PresenceSubscription> subscription) {
  absl::MutexLock lock(&mu_);
  dirty_.push_back(std::move(subscription));
}

std::vector<std::shared_ptr<PresenceSubscription>>
PresenceFanout::CheckedBefore(absl::Time before) const {
  std::vector<std::shared_ptr<PresenceSubscription>> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [raw, subscription] : subscriptions_) {
    if (raw->visibility_checked_at() < before) out.push_back(subscription);
  }
  return out;
}

void PresenceFanout::FinishSession(uint64_t session_id,
                                   const grpc::Status& status) {
  std::vector<std::shared_ptr<PresenceSubscription>> matching;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [raw, subscription] : subscriptions_) {
      if (raw->session_id() == session_id) matching.push_back(subscription);
    }
  }
  for (const auto& subscription : matching) {
    subscription->RequestFinish(status);
  }
}

void PresenceFanout::FinishAll(const grpc::Status& status) {
  std::vector<std::shared_ptr<PresenceSubscription>> all;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (const auto& [raw, subscription] : subscriptions_) {
      all.push_back(subscription);
    }
  }
  for (const auto& subscription : all) subscription->RequestFinish(status);
}

size_t PresenceFanout::subscriptions() const {
  absl::MutexLock lock(&mu_);
  return subscriptions_.size();
}

size_t PresenceFanout::subscriptions_of(uint64_t viewer) const {
  absl::MutexLock lock(&mu_);
  auto it = per_viewer_.find(viewer);
  return it == per_viewer_.end() ? 0 : it->second;
}

void PresenceFanout::Run() {
  absl::Time next = absl::Now() + options_.window;
  for (;;) {
    std::vector<std::shared_ptr<PresenceSubscription>> dirty;
    {
      absl::MutexLock lock(&mu_);
      const auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_;
      };
      mu_.AwaitWithDeadline(absl::Condition(&stopping), next);
      if (stopping_) return;
      dirty.swap(dirty_);
    }
    next = absl::Now() + options_.window;
    uint64_t updates = 0;
    uint64_t batches = 0;
    for (const auto& subscription : dirty) {
      const size_t written = subscription->Flush(*table_);
      if (written > 0) {
        updates += written;
        ++batches;
      }
    }
    updates_sent_ += updates;
    batches_sent_ += batches;
  }
}

}  // namespace im::presence
