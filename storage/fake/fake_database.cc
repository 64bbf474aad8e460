#include "storage/fake/fake_database.h"

#include <utility>

#include "storage/fake/fake_state.h"

namespace im::storage {

absl::Status FakeState::ConsumeFailureLocked() {
  if (failure.ok() || failure_calls == 0) return absl::OkStatus();
  absl::Status result = failure;
  if (failure_calls > 0 && --failure_calls == 0) failure = absl::OkStatus();
  return result;
}

uint64_t FakeState::RaiseReadMarkerLocked(uint64_t user_id,
                                          uint64_t conversation_id,
                                          uint64_t seq) {
  uint64_t& marker = read_markers[{user_id, conversation_id}];
  if (seq > marker) marker = seq;
  return marker;
}

const ConversationRecord* FakeState::FindConversationLocked(
    uint64_t conversation_id) {
  auto it = conversations.find(conversation_id);
  return it == conversations.end() ? nullptr : &it->second;
}

const MemberRecord* FakeState::FindActiveMemberLocked(uint64_t conversation_id,
                                                      uint64_t user_id) {
  auto it = members.find({conversation_id, user_id});
  if (it == members.end() || !it->second.active()) return nullptr;
  return &it->second;
}

std::vector<uint64_t> FakeState::ActiveMemberIdsLocked(
    uint64_t conversation_id) {
  std::vector<uint64_t> ids;
  for (auto it = members.lower_bound({conversation_id, 0});
       it != members.end() && it->first.first == conversation_id; ++it) {
    if (it->second.active()) ids.push_back(it->first.second);
  }
  return ids;
}

FakeDatabase::FakeDatabase()
    : state_(std::make_unique<FakeState>()),
      users_(NewFakeUserStore(state_.get())),
      sessions_(NewFakeSessionStore(state_.get())),
      log_(NewFakeConversationLog(state_.get())),
      reader_(NewFakeConversationReader(state_.get())),
      read_markers_(NewFakeReadMarkerStore(state_.get())) {}

FakeDatabase::~FakeDatabase() = default;

UserStore* FakeDatabase::users() { return users_.get(); }
SessionStore* FakeDatabase::sessions() { return sessions_.get(); }
ConversationLog* FakeDatabase::log() { return log_.get(); }
ConversationReader* FakeDatabase::reader() { return reader_.get(); }
ReadMarkerStore* FakeDatabase::read_markers() { return read_markers_.get(); }

void FakeDatabase::InjectFailure(absl::Status status, int calls) {
  absl::MutexLock lock(&state_->mu);
  state_->failure = std::move(status);
  state_->failure_calls = calls;
}

void FakeDatabase::ClearFailure() {
  absl::MutexLock lock(&state_->mu);
  state_->failure = absl::OkStatus();
  state_->failure_calls = 0;
}

}  // namespace im::storage
