#include "services/message/membership_cache.h"

#include <algorithm>
#include <utility>

namespace im::message {

MembershipCache::MembershipCache(Options options,
                                 storage::ConversationReader* reader,
                                 WorkerPool* pool)
    : options_(options), reader_(reader), pool_(pool) {}

MembersPtr MembershipCache::FindLocked(uint64_t conversation_id) {
  if (auto it = recent_.find(conversation_id); it != recent_.end()) {
    return it->second;
  }
  auto it = older_.find(conversation_id);
  if (it == older_.end()) return nullptr;
  MembersPtr members = std::move(it->second);
  older_.erase(it);
  InstallLocked(members);
  return members;
}

MembersPtr MembershipCache::Find(uint64_t conversation_id) {
  absl::MutexLock lock(&mu_);
  return FindLocked(conversation_id);
}

void MembershipCache::InstallLocked(MembersPtr members) {
  const uint64_t id = members->conversation_id;
  older_.erase(id);
  recent_[id] = std::move(members);
  if (recent_.size() >= std::max<size_t>(1, options_.max_conversations / 2)) {
    older_ = std::move(recent_);
    recent_.clear();
  }
}

absl::StatusOr<MembersPtr> MembershipCache::Load(uint64_t conversation_id) {
  absl::StatusOr<storage::ConversationRecord> conversation =
      reader_->GetConversation(conversation_id);
  if (!conversation.ok()) return conversation.status();
  auto members = std::make_shared<ConversationMembers>();
  members->conversation_id = conversation_id;
  members->kind = conversation->kind;
  uint64_t after = 0;
  for (;;) {
    absl::StatusOr<std::vector<storage::MemberRecord>> page =
        reader_->ListMembers(conversation_id, after, options_.load_page_size);
    if (!page.ok()) return page.status();
    for (const storage::MemberRecord& member : *page) {
      if (!member.active()) continue;
      members->member_ids.push_back(member.user_id);
      members->joined_seq[member.user_id] = member.joined_seq;
    }
    if (page->size() < options_.load_page_size) break;
    after = page->back().user_id;
  }
  std::sort(members->member_ids.begin(), members->member_ids.end());
  return MembersPtr(std::move(members));
}

void MembershipCache::FinishLoad(uint64_t conversation_id,
                                 uint64_t epoch_at_start,
                                 absl::StatusOr<MembersPtr> result) {
  std::vector<Callback> waiters;
  {
    absl::MutexLock lock(&mu_);
    if (result.ok() && change_epoch_ == epoch_at_start) InstallLocked(*result);
    auto it = loading_.find(conversation_id);
    if (it != loading_.end()) {
      waiters = std::move(it->second);
      loading_.erase(it);
    }
  }
  for (Callback& waiter : waiters) std::move(waiter)(result);
}

void MembershipCache::Get(uint64_t conversation_id, Callback done) {
  MembersPtr hit;
  uint64_t epoch = 0;
  {
    absl::MutexLock lock(&mu_);
    hit = FindLocked(conversation_id);
    if (hit == nullptr) {
      auto [it, first] = loading_.try_emplace(conversation_id);
      it->second.push_back(std::move(done));
      if (!first) return;
      epoch = change_epoch_;
    }
  }
  if (hit != nullptr) {
    std::move(done)(std::move(hit));
    return;
  }
  absl::Status submitted = pool_->Submit([this, conversation_id, epoch] {
    FinishLoad(conversation_id, epoch, Load(conversation_id));
  });
  if (!submitted.ok()) {
    FinishLoad(conversation_id, epoch,
               absl::UnavailableError("server is busy; retry"));
  }
}

absl::StatusOr<MembersPtr> MembershipCache::GetBlocking(
    uint64_t conversation_id) {
  uint64_t epoch = 0;
  {
    absl::MutexLock lock(&mu_);
    if (MembersPtr members = FindLocked(conversation_id)) return members;
    epoch = change_epoch_;
  }
  absl::StatusOr<MembersPtr> loaded = Load(conversation_id);
  if (!loaded.ok()) return loaded.status();
  // On this node only the conversation's writer shard changes its members,
  // and callers for conversations they write are that shard; another
  // node's change shows as Invalidate, after which this load may be old.
  absl::MutexLock lock(&mu_);
  if (change_epoch_ == epoch) InstallLocked(*loaded);
  return loaded;
}

void MembershipCache::ApplyChange(const storage::MemberChange& change) {
  const uint64_t id = change.conversation.id;
  const uint64_t seq = change.entry.has_value() ? change.entry->seq() : 0;
  absl::MutexLock lock(&mu_);
  ++change_epoch_;
  MembersPtr previous = FindLocked(id);
  const bool created =
      change.entry.has_value() && change.entry->has_member_event() &&
      change.entry->member_event().kind() ==
          ::im::message::v1::MemberEvent::KIND_CREATED;
  if (previous == nullptr && !created) return;  // loaded fresh when needed
  auto members = std::make_shared<ConversationMembers>();
  members->conversation_id = id;
  members->kind = change.conversation.kind;
  members->member_ids = change.members_after;
  std::sort(members->member_ids.begin(), members->member_ids.end());
  for (uint64_t user_id : members->member_ids) {
    uint64_t joined = seq;
    if (previous != nullptr) {
      if (auto it = previous->joined_seq.find(user_id);
          it != previous->joined_seq.end()) {
        joined = it->second;
      }
    }
    members->joined_seq[user_id] = joined;
  }
  InstallLocked(std::move(members));
}

void MembershipCache::Invalidate(uint64_t conversation_id) {
  absl::MutexLock lock(&mu_);
  ++change_epoch_;
  recent_.erase(conversation_id);
  older_.erase(conversation_id);
}

void MembershipCache::Clear() {
  absl::MutexLock lock(&mu_);
  ++change_epoch_;
  recent_.clear();
  older_.clear();
}

}  // namespace im::message
