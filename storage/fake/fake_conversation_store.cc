#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "storage/column_limits.h"
#include "storage/fake/fake_state.h"
#include "storage/log_entry.h"
#include "storage/membership_rules.h"

namespace im::storage {

absl::StatusOr<Entry> FakeState::AppendMemberEventLocked(
    ConversationRecord& conversation, uint64_t actor,
    const std::string& requested_id, absl::Time now, MemberEvent event) {
  const uint64_t seq = conversation.last_seq + 1;
  absl::StatusOr<std::string> client_msg_id =
      MemberChangeClientMsgId(requested_id, seq);
  if (!client_msg_id.ok()) return client_msg_id.status();
  Entry entry = MakeMemberEventEntry(conversation.id, seq, actor,
                                     *client_msg_id, now, std::move(event));
  StoreEntryLocked(conversation, entry, now);
  return entry;
}

void FakeState::StoreEntryLocked(ConversationRecord& conversation,
                                 const Entry& entry, absl::Time now) {
  conversation.last_seq = entry.seq();
  conversation.last_activity_at = std::max(conversation.last_activity_at, now);
  log[conversation.id].push_back(entry);
  dedup[{conversation.id, entry.sender_id(), entry.client_msg_id()}] =
      entry.seq();
}

void FakeState::JoinLocked(ConversationRecord& conversation, uint64_t user_id,
                           MemberRole role, uint64_t joined_seq,
                           absl::Time now) {
  MemberRecord& member = members[{conversation.id, user_id}];
  member.user_id = user_id;
  member.conversation_id = conversation.id;
  member.role = role;
  member.joined_seq = joined_seq;
  member.joined_at = now;
  member.left_seq.reset();
  member.left_at.reset();
  memberships_by_user.insert({user_id, conversation.id});
  ++conversation.member_count;
  if (joined_seq > 1) {
    RaiseReadMarkerLocked(user_id, conversation.id, joined_seq - 1);
  }
}

MemberChange FakeState::MemberChangeLocked(
    const ConversationRecord& conversation, std::optional<Entry> entry,
    std::vector<uint64_t> affected) {
  MemberChange change;
  change.conversation = conversation;
  change.entry = std::move(entry);
  change.members_after = ActiveMemberIdsLocked(conversation.id);
  change.affected = std::move(affected);
  return change;
}

std::optional<MemberChange> FakeState::DuplicateChangeLocked(
    const ConversationRecord& conversation, uint64_t actor,
    const std::string& client_msg_id) {
  if (client_msg_id.empty()) return std::nullopt;
  auto it = dedup.find({conversation.id, actor, client_msg_id});
  if (it == dedup.end()) return std::nullopt;
  const Entry& entry = log.at(conversation.id).at(it->second - 1);
  std::vector<uint64_t> affected;
  if (entry.has_member_event()) {
    affected.assign(entry.member_event().user_ids().begin(),
                    entry.member_event().user_ids().end());
  }
  MemberChange change = MemberChangeLocked(conversation, entry,
                                           std::move(affected));
  change.duplicate = true;
  return change;
}

namespace {

using ::im::message::v1::MemberEvent;

std::string DirectKey(uint64_t lo, uint64_t hi) {
  return absl::StrCat(lo, ":", hi);
}

MemberEvent Event(MemberEvent::Kind kind, std::vector<uint64_t> user_ids) {
  MemberEvent event;
  event.set_kind(kind);
  for (uint64_t id : user_ids) event.add_user_ids(id);
  return event;
}

class FakeConversationLog : public ConversationLog {
 public:
  explicit FakeConversationLog(FakeState* state) : state_(state) {}

  absl::StatusOr<std::vector<AppendOutcome>> AppendMessages(
      absl::Span<const AppendRequest> batch, absl::Time now) override {
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<AppendOutcome> outcomes(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      const AppendRequest& request = batch[i];
      AppendOutcome& outcome = outcomes[i];
      if (auto s = ValidateAppend(request); !s.ok()) {
        outcome.status = s;
        continue;
      }
      auto conversation = state_->conversations.find(request.conversation_id);
      if (conversation == state_->conversations.end() ||
          state_->FindActiveMemberLocked(request.conversation_id,
                                         request.sender_id) == nullptr) {
        outcome.status = ConversationNotFoundError();
        continue;
      }
      auto dup = state_->dedup.find({request.conversation_id,
                                     request.sender_id, request.client_msg_id});
      if (dup != state_->dedup.end()) {
        outcome.entry =
            state_->log.at(request.conversation_id).at(dup->second - 1);
        outcome.duplicate = true;
        continue;
      }
      outcome.entry = MakeMessageEntry(
          request, conversation->second.last_seq + 1, now);
      state_->StoreEntryLocked(conversation->second, outcome.entry, now);
      state_->RaiseReadMarkerLocked(request.sender_id, request.conversation_id,
                                    outcome.entry.seq());
    }
    return outcomes;
  }

  absl::StatusOr<MemberChange> CreateGroup(uint64_t creator,
                                           const std::string& title,
                                           absl::Span<const uint64_t> members,
                                           uint32_t max_members,
                                           const std::string& client_msg_id,
                                           absl::Time now) override {
    absl::StatusOr<std::vector<uint64_t>> ids = GroupMembersToCreate(
        creator, title, members, max_members, client_msg_id);
    if (!ids.ok()) return ids.status();
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    for (uint64_t id : *ids) {
      if (state_->users.count(id) == 0) {
        return absl::NotFoundError(absl::StrCat("user not found: ", id));
      }
    }
    ConversationRecord& conversation =
        NewConversation(ConversationKind::CONVERSATION_KIND_GROUP, creator,
                        now);
    conversation.title = title;
    for (uint64_t id : *ids) {
      state_->JoinLocked(conversation, id,
                  id == creator ? MemberRole::MEMBER_ROLE_OWNER
                                : MemberRole::MEMBER_ROLE_MEMBER,
                  1, now);
    }
    const std::vector<uint64_t>& all = *ids;
    MemberEvent event = Event(MemberEvent::KIND_CREATED, all);
    event.set_title(title);
    absl::StatusOr<Entry> entry = state_->AppendMemberEventLocked(
        conversation, creator, client_msg_id, now, std::move(event));
    if (!entry.ok()) return entry.status();
    state_->RaiseReadMarkerLocked(creator, conversation.id, entry->seq());
    return state_->MemberChangeLocked(conversation, *std::move(entry), all);
  }

  absl::StatusOr<DirectResult> GetOrCreateDirect(
      uint64_t a, uint64_t b, const std::string& client_msg_id,
      absl::Time now) override {
    if (auto s = ValidateDirectPair(a, b, client_msg_id); !s.ok()) return s;
    now = StoredTime(now);
    const uint64_t lo = std::min(a, b);
    const uint64_t hi = std::max(a, b);
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    DirectResult result;
    auto existing = state_->direct_by_key.find(DirectKey(lo, hi));
    if (existing != state_->direct_by_key.end()) {
      result.change = state_->MemberChangeLocked(
          state_->conversations.at(existing->second), std::nullopt, {});
      return result;
    }
    if (state_->users.count(lo) == 0 || state_->users.count(hi) == 0) {
      return absl::NotFoundError(absl::StrCat(
          "user not found: ", state_->users.count(lo) == 0 ? lo : hi));
    }
    ConversationRecord& conversation =
        NewConversation(ConversationKind::CONVERSATION_KIND_DIRECT, a, now);
    conversation.direct_user_a = lo;
    conversation.direct_user_b = hi;
    state_->direct_by_key[DirectKey(lo, hi)] = conversation.id;
    state_->JoinLocked(conversation, lo, MemberRole::MEMBER_ROLE_MEMBER, 1, now);
    state_->JoinLocked(conversation, hi, MemberRole::MEMBER_ROLE_MEMBER, 1, now);
    absl::StatusOr<Entry> entry =
        state_->AppendMemberEventLocked(conversation, a, client_msg_id, now,
                           Event(MemberEvent::KIND_CREATED, {lo, hi}));
    if (!entry.ok()) return entry.status();
    state_->RaiseReadMarkerLocked(a, conversation.id, entry->seq());
    result.change = state_->MemberChangeLocked(conversation, *std::move(entry), {lo, hi});
    result.created = true;
    return result;
  }

  absl::StatusOr<MemberChange> AddMembers(uint64_t conversation_id,
                                          uint64_t actor,
                                          absl::Span<const uint64_t> users,
                                          uint32_t max_members,
                                          const std::string& client_msg_id,
                                          absl::Time now) override {
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    absl::StatusOr<GroupChange> change =
        BeginGroupChangeLocked(conversation_id, actor, client_msg_id);
    if (!change.ok()) return change.status();
    if (change->duplicate.has_value()) return *std::move(change->duplicate);
    ConversationRecord* conversation = change->conversation;
    const MemberRecord* actor_row = change->actor;
    if (auto s = CheckCanAddMembers(*actor_row); !s.ok()) return s;
    std::vector<uint64_t> added;
    for (uint64_t id : std::set<uint64_t>(users.begin(), users.end())) {
      if (state_->users.count(id) == 0) {
        return absl::NotFoundError(absl::StrCat("user not found: ", id));
      }
      if (state_->FindActiveMemberLocked(conversation_id, id) == nullptr) {
        added.push_back(id);
      }
    }
    if (added.empty()) return state_->MemberChangeLocked(*conversation, std::nullopt, {});
    if (auto s = CheckGroupSize(conversation->member_count + added.size(),
                                max_members, "group full");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<Entry> entry =
        state_->AppendMemberEventLocked(*conversation, actor, client_msg_id, now,
                           Event(MemberEvent::KIND_ADDED, added));
    if (!entry.ok()) return entry.status();
    for (uint64_t id : added) {
      state_->JoinLocked(*conversation, id, MemberRole::MEMBER_ROLE_MEMBER,
                  entry->seq(), now);
    }
    state_->RaiseReadMarkerLocked(actor, conversation_id, entry->seq());
    return state_->MemberChangeLocked(*conversation, *std::move(entry), added);
  }

  absl::StatusOr<MemberChange> RemoveMember(uint64_t conversation_id,
                                            uint64_t actor, uint64_t user,
                                            const std::string& client_msg_id,
                                            absl::Time now) override {
    if (auto s = CheckNotSelfRemoval(actor, user); !s.ok()) return s;
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    absl::StatusOr<GroupChange> change =
        BeginGroupChangeLocked(conversation_id, actor, client_msg_id);
    if (!change.ok()) return change.status();
    if (change->duplicate.has_value()) return *std::move(change->duplicate);
    ConversationRecord* conversation = change->conversation;
    const MemberRecord* actor_row = change->actor;
    const MemberRecord* target =
        state_->FindActiveMemberLocked(conversation_id, user);
    if (auto s = CheckCanRemoveMember(*actor_row, target); !s.ok()) return s;
    absl::StatusOr<Entry> entry =
        state_->AppendMemberEventLocked(*conversation, actor, client_msg_id, now,
                           Event(MemberEvent::KIND_REMOVED, {user}));
    if (!entry.ok()) return entry.status();
    Depart(*conversation, user, entry->seq(), now);
    state_->RaiseReadMarkerLocked(actor, conversation_id, entry->seq());
    return state_->MemberChangeLocked(*conversation, *std::move(entry), {user});
  }

  absl::StatusOr<MemberChange> Leave(uint64_t conversation_id, uint64_t user,
                                     const std::string& client_msg_id,
                                     absl::Time now) override {
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    absl::StatusOr<GroupChange> change =
        BeginGroupChangeLocked(conversation_id, user, client_msg_id);
    if (!change.ok()) return change.status();
    if (change->duplicate.has_value()) return *std::move(change->duplicate);
    ConversationRecord* conversation = change->conversation;
    const MemberRecord* user_row = change->actor;
    const bool was_owner = user_row->role == MemberRole::MEMBER_ROLE_OWNER;
    absl::StatusOr<Entry> entry =
        state_->AppendMemberEventLocked(*conversation, user, client_msg_id, now,
                           Event(MemberEvent::KIND_LEFT, {user}));
    if (!entry.ok()) return entry.status();
    Depart(*conversation, user, entry->seq(), now);
    if (was_owner) {
      std::vector<MemberRecord> remaining;
      for (uint64_t id : state_->ActiveMemberIdsLocked(conversation_id)) {
        remaining.push_back(state_->members.at({conversation_id, id}));
      }
      if (std::optional<uint64_t> owner = PickNextOwner(remaining)) {
        state_->members.at({conversation_id, *owner}).role =
            MemberRole::MEMBER_ROLE_OWNER;
      }
    }
    return state_->MemberChangeLocked(*conversation, *std::move(entry), {user});
  }

  absl::StatusOr<MemberChange> SetRole(uint64_t conversation_id,
                                       uint64_t actor, uint64_t user,
                                       MemberRole role,
                                       const std::string& client_msg_id,
                                       absl::Time now) override {
    if (auto s = ValidateNewRole(role); !s.ok()) return s;
    now = StoredTime(now);
    absl::MutexLock lock(&state_->mu);
    absl::StatusOr<GroupChange> change =
        BeginGroupChangeLocked(conversation_id, actor, client_msg_id);
    if (!change.ok()) return change.status();
    if (change->duplicate.has_value()) return *std::move(change->duplicate);
    ConversationRecord* conversation = change->conversation;
    const MemberRecord* actor_row = change->actor;
    const MemberRecord* target =
        state_->FindActiveMemberLocked(conversation_id, user);
    if (auto s = CheckCanSetRole(*actor_row, target); !s.ok()) return s;
    if (target->role == role) {
      return state_->MemberChangeLocked(*conversation, std::nullopt, {});
    }
    MemberEvent event = Event(MemberEvent::KIND_ROLE_CHANGED, {user});
    event.set_role(role);
    absl::StatusOr<Entry> entry = state_->AppendMemberEventLocked(
        *conversation, actor, client_msg_id, now, std::move(event));
    if (!entry.ok()) return entry.status();
    state_->members.at({conversation_id, user}).role = role;
    state_->RaiseReadMarkerLocked(actor, conversation_id, entry->seq());
    return state_->MemberChangeLocked(*conversation, *std::move(entry), {user});
  }

 private:
  ConversationRecord& NewConversation(ConversationKind kind, uint64_t creator,
                                      absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    ConversationRecord record;
    record.id = state_->next_conversation_id++;
    record.kind = kind;
    record.created_by = creator;
    record.created_at = now;
    record.last_activity_at = now;
    return state_->conversations[record.id] = record;
  }

  // The start of AddMembers/RemoveMember/Leave/SetRole: checks the
  // client_msg_id, the group and the actor, and finds a duplicate.
  struct GroupChange {
    ConversationRecord* conversation = nullptr;
    const MemberRecord* actor = nullptr;
    std::optional<MemberChange> duplicate;
  };
  absl::StatusOr<GroupChange> BeginGroupChangeLocked(
      uint64_t conversation_id, uint64_t actor,
      const std::string& client_msg_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    if (auto s = ValidateMemberChangeClientMsgId(client_msg_id); !s.ok()) {
      return s;
    }
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    GroupChange change;
    auto it = state_->conversations.find(conversation_id);
    if (it != state_->conversations.end()) change.conversation = &it->second;
    change.actor = state_->FindActiveMemberLocked(conversation_id, actor);
    if (auto s = CheckGroupChange(change.conversation, change.actor); !s.ok()) {
      return s;
    }
    change.duplicate = state_->DuplicateChangeLocked(*change.conversation,
                                                     actor, client_msg_id);
    return change;
  }

  void Depart(ConversationRecord& conversation, uint64_t user, uint64_t seq,
              absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    MemberRecord& member = state_->members.at({conversation.id, user});
    member.left_seq = seq;
    member.left_at = now;
    --conversation.member_count;
  }

  FakeState* const state_;
};

class FakeConversationReader : public ConversationReader {
 public:
  explicit FakeConversationReader(FakeState* state) : state_(state) {}

  absl::StatusOr<ConversationRecord> GetConversation(
      uint64_t conversation_id) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    const ConversationRecord* c =
        state_->FindConversationLocked(conversation_id);
    if (c == nullptr) return ConversationNotFoundError();
    return *c;
  }

  absl::StatusOr<MemberRecord> GetMember(uint64_t conversation_id,
                                         uint64_t user_id) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->members.find({conversation_id, user_id});
    if (it == state_->members.end()) return ConversationNotFoundError();
    return it->second;
  }

  absl::StatusOr<MembershipView> GetMembershipView(
      uint64_t user_id, uint64_t conversation_id) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->members.find({conversation_id, user_id});
    if (it == state_->members.end()) return ConversationNotFoundError();
    return ViewLocked(it->second);
  }

  absl::StatusOr<std::vector<MemberRecord>> ListMembers(
      uint64_t conversation_id, uint64_t after_user_id,
      uint32_t limit) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    if (state_->FindConversationLocked(conversation_id) == nullptr) {
      return ConversationNotFoundError();
    }
    std::vector<MemberRecord> result;
    for (auto it = state_->members.upper_bound({conversation_id, after_user_id});
         it != state_->members.end() && it->first.first == conversation_id &&
         result.size() < limit;
         ++it) {
      if (it->second.active()) result.push_back(it->second);
    }
    return result;
  }

  absl::StatusOr<std::vector<uint64_t>> ListActiveMemberIds(
      uint64_t conversation_id) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    if (state_->FindConversationLocked(conversation_id) == nullptr) {
      return ConversationNotFoundError();
    }
    return state_->ActiveMemberIdsLocked(conversation_id);
  }

  absl::StatusOr<std::vector<MembershipView>> ListMemberships(
      uint64_t user_id, uint64_t after_conversation_id, uint32_t limit,
      bool include_left) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<MembershipView> result;
    for (auto it = state_->memberships_by_user.upper_bound(
             {user_id, after_conversation_id});
         it != state_->memberships_by_user.end() && it->first == user_id &&
         result.size() < limit;
         ++it) {
      const MemberRecord& member = state_->members.at({it->second, user_id});
      if (!member.active() && !include_left) continue;
      result.push_back(ViewLocked(member));
    }
    return result;
  }

  absl::StatusOr<std::vector<ConversationListRow>> ListConversationsPage(
      uint64_t user_id, const std::optional<ConversationPageCursor>& after,
      uint32_t limit) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    // Sort key: (last_activity_at, id) descending.
    using Key = std::pair<absl::Time, uint64_t>;
    std::vector<std::pair<Key, const MemberRecord*>> rows;
    std::optional<Key> cursor;
    if (after.has_value()) {
      cursor = Key(StoredTime(after->last_activity_at), after->conversation_id);
    }
    for (auto it = state_->memberships_by_user.lower_bound({user_id, 0});
         it != state_->memberships_by_user.end() && it->first == user_id;
         ++it) {
      const MemberRecord& member = state_->members.at({it->second, user_id});
      if (!member.active()) continue;
      const ConversationRecord& c = state_->conversations.at(it->second);
      Key key(c.last_activity_at, c.id);
      if (cursor.has_value() && !(key < *cursor)) continue;
      rows.emplace_back(key, &member);
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    if (rows.size() > limit) rows.resize(limit);
    std::vector<ConversationListRow> result;
    for (const auto& [key, member] : rows) {
      ConversationListRow row;
      row.view = ViewLocked(*member);
      const std::vector<Entry>& log = state_->log[member->conversation_id];
      const uint64_t last_seq = row.view.conversation.last_seq;
      if (last_seq > 0 && last_seq <= log.size()) {
        row.last_entry = log[last_seq - 1];
      }
      result.push_back(std::move(row));
    }
    return result;
  }

  absl::StatusOr<std::vector<Entry>> ReadAfter(uint64_t conversation_id,
                                               uint64_t after_seq,
                                               uint64_t max_seq,
                                               uint32_t limit) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<Entry> result;
    auto it = state_->log.find(conversation_id);
    if (it == state_->log.end()) return result;
    const std::vector<Entry>& log = it->second;
    const uint64_t end = std::min<uint64_t>(max_seq, log.size());
    for (uint64_t seq = after_seq + 1; seq <= end && result.size() < limit;
         ++seq) {
      result.push_back(log[seq - 1]);
    }
    return result;
  }

  absl::StatusOr<std::vector<Entry>> ReadBefore(uint64_t conversation_id,
                                                uint64_t before_seq,
                                                uint64_t min_seq,
                                                uint32_t limit) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<Entry> result;
    auto it = state_->log.find(conversation_id);
    if (it == state_->log.end() || before_seq == 0) return result;
    const std::vector<Entry>& log = it->second;
    const uint64_t first = std::max<uint64_t>(min_seq, 1);
    for (uint64_t seq = std::min<uint64_t>(before_seq - 1, log.size());
         seq >= first && result.size() < limit; --seq) {
      result.push_back(log[seq - 1]);
    }
    std::reverse(result.begin(), result.end());
    return result;
  }

  absl::StatusOr<std::vector<Entry>> ReadSeqs(
      uint64_t conversation_id, absl::Span<const uint64_t> seqs) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::vector<Entry> result;
    auto it = state_->log.find(conversation_id);
    if (it == state_->log.end()) return result;
    for (uint64_t seq : std::set<uint64_t>(seqs.begin(), seqs.end())) {
      if (seq >= 1 && seq <= it->second.size()) {
        result.push_back(it->second[seq - 1]);
      }
    }
    return result;
  }

  absl::StatusOr<std::vector<uint64_t>> UsersSharingConversation(
      uint64_t viewer, absl::Span<const uint64_t> candidates) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    std::set<uint64_t> wanted(candidates.begin(), candidates.end());
    std::set<uint64_t> result;
    if (wanted.count(viewer) > 0) result.insert(viewer);
    for (auto it = state_->memberships_by_user.lower_bound({viewer, 0});
         it != state_->memberships_by_user.end() && it->first == viewer;
         ++it) {
      if (state_->FindActiveMemberLocked(it->second, viewer) == nullptr) {
        continue;
      }
      for (uint64_t id : state_->ActiveMemberIdsLocked(it->second)) {
        if (wanted.count(id) > 0) result.insert(id);
      }
    }
    return std::vector<uint64_t>(result.begin(), result.end());
  }

 private:
  MembershipView ViewLocked(const MemberRecord& member)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    MembershipView view;
    view.conversation = state_->conversations.at(member.conversation_id);
    view.member = member;
    auto marker =
        state_->read_markers.find({member.user_id, member.conversation_id});
    if (marker != state_->read_markers.end()) view.read_seq = marker->second;
    return view;
  }

  FakeState* const state_;
};

class FakeReadMarkerStore : public ReadMarkerStore {
 public:
  explicit FakeReadMarkerStore(FakeState* state) : state_(state) {}

  absl::StatusOr<uint64_t> MarkRead(uint64_t user_id, uint64_t conversation_id,
                                    uint64_t seq, absl::Time now) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    if (state_->FindActiveMemberLocked(conversation_id, user_id) == nullptr) {
      return ConversationNotFoundError();
    }
    const ConversationRecord& c = state_->conversations.at(conversation_id);
    if (seq == 0 || seq > c.last_seq) {
      return absl::OutOfRangeError(
          absl::StrCat("seq must be between 1 and ", c.last_seq));
    }
    return state_->RaiseReadMarkerLocked(user_id, conversation_id, seq);
  }

  absl::StatusOr<uint64_t> GetReadSeq(uint64_t user_id,
                                      uint64_t conversation_id) override {
    absl::MutexLock lock(&state_->mu);
    if (auto s = state_->ConsumeFailureLocked(); !s.ok()) return s;
    auto it = state_->read_markers.find({user_id, conversation_id});
    return it == state_->read_markers.end() ? 0 : it->second;
  }

 private:
  FakeState* const state_;
};

}  // namespace

std::unique_ptr<ConversationLog> NewFakeConversationLog(FakeState* state) {
  return std::make_unique<FakeConversationLog>(state);
}
std::unique_ptr<ConversationReader> NewFakeConversationReader(
    FakeState* state) {
  return std::make_unique<FakeConversationReader>(state);
}
std::unique_ptr<ReadMarkerStore> NewFakeReadMarkerStore(FakeState* state) {
  return std::make_unique<FakeReadMarkerStore>(state);
}

}  // namespace im::storage
