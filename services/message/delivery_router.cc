#include "services/message/delivery_router.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace im::message {

DeliveryRouter::DeliveryRouter(Options options) : options_(options) {}

void DeliveryRouter::SetLocalUsersListener(LocalUsersListener* listener) {
  // Read under one shard's lock, so written under all of them: once this
  // returns no call to the previous listener is running or will start.
  for (Shard& shard : shards_) shard.mu.Lock();
  users_listener_ = listener;
  for (Shard& shard : shards_) shard.mu.Unlock();
}

absl::Status DeliveryRouter::Register(
    const std::shared_ptr<StreamSession>& session, bool counted) {
  Shard& shard = ShardOf(session->user_id());
  absl::MutexLock lock(&shard.mu);
  UserSessions& user = shard.users[session->user_id()];
  if (counted && user.counted >= options_.max_streams_per_user) {
    if (user.sessions.empty()) shard.users.erase(session->user_id());
    return absl::ResourceExhaustedError(
        absl::StrCat("too many open streams for this user (limit ",
                     options_.max_streams_per_user, ")"));
  }
  user.sessions.push_back(session);
  user.is_counted.push_back(counted);
  if (counted) ++user.counted;
  if (user.sessions.size() == 1 && users_listener_ != nullptr) {
    users_listener_->OnUserArrived(session->user_id());
  }
  return absl::OkStatus();
}

void DeliveryRouter::Unregister(const StreamSession* session) {
  Shard& shard = ShardOf(session->user_id());
  absl::MutexLock lock(&shard.mu);
  auto it = shard.users.find(session->user_id());
  if (it == shard.users.end()) return;
  UserSessions& user = it->second;
  for (size_t i = 0; i < user.sessions.size(); ++i) {
    if (user.sessions[i].get() != session) continue;
    if (user.is_counted[i]) --user.counted;
    user.sessions.erase(user.sessions.begin() + i);
    user.is_counted.erase(user.is_counted.begin() + i);
    break;
  }
  if (user.sessions.empty()) {
    shard.users.erase(it);
    if (users_listener_ != nullptr)
      users_listener_->OnUserLeft(session->user_id());
  }
}

void DeliveryRouter::CollectSessions(
    uint64_t user_id, std::vector<std::shared_ptr<StreamSession>>& out) {
  Shard& shard = ShardOf(user_id);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.users.find(user_id);
  if (it == shard.users.end()) return;
  out.insert(out.end(), it->second.sessions.begin(), it->second.sessions.end());
}

void DeliveryRouter::PublishEntry(storage::Entry entry,
                                  const ConversationMembers& members,
                                  absl::Span<const uint64_t> also_to) {
  ::im::message::v1::ServerFrame frame;
  *frame.mutable_entry() = std::move(entry);
  const FramePtr shared = MakeFrame(std::move(frame), absl::Now());
  std::vector<std::shared_ptr<StreamSession>> sessions;
  for (uint64_t user_id : members.member_ids) CollectSessions(user_id, sessions);
  for (uint64_t user_id : also_to) {
    if (!members.IsMember(user_id)) CollectSessions(user_id, sessions);
  }
  for (const auto& session : sessions) session->OnEntry(shared);
}

void DeliveryRouter::PublishEphemeral(const FramePtr& frame,
                                      absl::Span<const uint64_t> users,
                                      uint64_t except_user) {
  std::vector<std::shared_ptr<StreamSession>> sessions;
  for (uint64_t user_id : users) {
    if (user_id != except_user) CollectSessions(user_id, sessions);
  }
  for (const auto& session : sessions) session->OnEphemeral(frame);
}

void DeliveryRouter::WhenRoutable(uint64_t,
                                  absl::AnyInvocable<void() &&> start) {
  std::move(start)();
}

std::vector<std::shared_ptr<StreamSession>> DeliveryRouter::SessionsOf(
    uint64_t user_id) {
  std::vector<std::shared_ptr<StreamSession>> sessions;
  CollectSessions(user_id, sessions);
  return sessions;
}

std::vector<std::shared_ptr<StreamSession>> DeliveryRouter::AllSessions() {
  std::vector<std::shared_ptr<StreamSession>> sessions;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [id, user] : shard.users) {
      sessions.insert(sessions.end(), user.sessions.begin(),
                      user.sessions.end());
    }
  }
  return sessions;
}

size_t DeliveryRouter::session_count() {
  size_t count = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [id, user] : shard.users) count += user.sessions.size();
  }
  return count;
}

}  // namespace im::message
