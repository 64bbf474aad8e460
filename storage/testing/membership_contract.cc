#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/testing/store_contract.h"

namespace im::storage::testing {
namespace {

using ::im::message::v1::MemberEvent;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

std::vector<uint64_t> UserIds(const Entry& entry) {
  return {entry.member_event().user_ids().begin(),
          entry.member_event().user_ids().end()};
}

std::vector<uint64_t> Sorted(std::vector<uint64_t> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST_P(MembershipContractTest, CreateGroup) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t carol = MakeUser("carol");
  absl::StatusOr<MemberChange> created =
      log().CreateGroup(alice, "Team \xf0\x9f\x9a\x80", {carol, bob, carol}, 3,
                        "create-1", At(7));
  ASSERT_TRUE(created.ok()) << created.status();
  const std::vector<uint64_t> all = Sorted({alice, bob, carol});
  const ConversationRecord& c = created->conversation;
  EXPECT_GT(c.id, 0u);
  EXPECT_EQ(c.kind, ConversationKind::CONVERSATION_KIND_GROUP);
  EXPECT_EQ(c.title, "Team \xf0\x9f\x9a\x80");
  EXPECT_EQ(c.direct_user_a, 0u);
  EXPECT_EQ(c.direct_user_b, 0u);
  EXPECT_EQ(c.created_by, alice);
  EXPECT_EQ(c.created_at, Stored(At(7)));
  EXPECT_EQ(c.last_seq, 1u);
  EXPECT_EQ(c.last_activity_at, Stored(At(7)));
  EXPECT_EQ(c.member_count, 3u);
  EXPECT_EQ(created->members_after, all);
  EXPECT_EQ(created->affected, all);
  EXPECT_FALSE(created->duplicate);
  ASSERT_TRUE(created->entry.has_value());
  const Entry& e = *created->entry;
  EXPECT_EQ(e.conversation_id(), c.id);
  EXPECT_EQ(e.seq(), 1u);
  EXPECT_EQ(e.sender_id(), alice);
  EXPECT_EQ(e.client_msg_id(), "create-1");
  EXPECT_EQ(e.member_event().kind(), MemberEvent::KIND_CREATED);
  EXPECT_EQ(e.member_event().title(), "Team \xf0\x9f\x9a\x80");
  EXPECT_EQ(UserIds(e), all);

  std::vector<Entry> stored = ReadAll(c.id);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_TRUE(SameEntry(stored[0], e));

  absl::StatusOr<ConversationRecord> got = reader().GetConversation(c.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->title, c.title);
  EXPECT_EQ(got->member_count, 3u);
  EXPECT_EQ(got->created_at, Stored(At(7)));

  absl::StatusOr<MemberRecord> owner = reader().GetMember(c.id, alice);
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(owner->role, MemberRole::MEMBER_ROLE_OWNER);
  EXPECT_EQ(owner->joined_seq, 1u);
  EXPECT_EQ(owner->joined_at, Stored(At(7)));
  EXPECT_FALSE(owner->left_seq.has_value());
  EXPECT_EQ(reader().GetMember(c.id, bob)->role, MemberRole::MEMBER_ROLE_MEMBER);

  // The creator is added when not listed; an empty id is server-chosen.
  absl::StatusOr<MemberChange> solo = log().CreateGroup(bob, "", {}, 0, "", At(8));
  ASSERT_TRUE(solo.ok()) << solo.status();
  EXPECT_EQ(solo->members_after, std::vector<uint64_t>{bob});
  EXPECT_FALSE(solo->entry->client_msg_id().empty());
}

TEST_P(MembershipContractTest, CreateGroupRejections) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  EXPECT_EQ(log().CreateGroup(alice, "t", {bob, 999999}, 0, "", At(1))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(log().CreateGroup(999999, "t", {bob}, 0, "", At(1)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(log().CreateGroup(alice, "t", {bob}, 1, "", At(1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log()
                .CreateGroup(alice, std::string(256, 't'), {bob}, 0, "", At(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log().CreateGroup(alice, "\xff", {bob}, 0, "", At(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log().CreateGroup(alice, "t", {bob}, 0, "bad id", At(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing was created by the failures.
  absl::StatusOr<std::vector<MembershipView>> memberships =
      reader().ListMemberships(alice, 0, 100, true);
  ASSERT_TRUE(memberships.ok());
  EXPECT_THAT(*memberships, IsEmpty());
  EXPECT_TRUE(log().CreateGroup(alice, "t", {bob}, 2, "", At(1)).ok());
}

TEST_P(MembershipContractTest, GetOrCreateDirect) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  absl::StatusOr<DirectResult> first =
      log().GetOrCreateDirect(bob, alice, "d-1", At(3));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  const ConversationRecord& c = first->change.conversation;
  EXPECT_EQ(c.kind, ConversationKind::CONVERSATION_KIND_DIRECT);
  EXPECT_EQ(c.direct_user_a, std::min(alice, bob));
  EXPECT_EQ(c.direct_user_b, std::max(alice, bob));
  EXPECT_EQ(c.created_by, bob);
  EXPECT_EQ(c.last_seq, 1u);
  EXPECT_EQ(c.member_count, 2u);
  EXPECT_EQ(first->change.members_after, Sorted({alice, bob}));
  ASSERT_TRUE(first->change.entry.has_value());
  EXPECT_EQ(first->change.entry->sender_id(), bob);
  EXPECT_EQ(first->change.entry->client_msg_id(), "d-1");
  EXPECT_EQ(first->change.entry->member_event().kind(),
            MemberEvent::KIND_CREATED);
  EXPECT_EQ(UserIds(*first->change.entry), Sorted({alice, bob}));
  EXPECT_EQ(reader().GetMember(c.id, alice)->role,
            MemberRole::MEMBER_ROLE_MEMBER);
  EXPECT_EQ(reader().GetMember(c.id, bob)->role, MemberRole::MEMBER_ROLE_MEMBER);

  absl::StatusOr<DirectResult> again =
      log().GetOrCreateDirect(alice, bob, "d-2", At(4));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->change.conversation.id, c.id);
  EXPECT_FALSE(again->change.entry.has_value());
  EXPECT_EQ(again->change.members_after, Sorted({alice, bob}));
  EXPECT_EQ(Seqs(ReadAll(c.id)), std::vector<uint64_t>{1});

  EXPECT_EQ(log().GetOrCreateDirect(alice, alice, "", At(4)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log().GetOrCreateDirect(alice, 999999, "", At(4)).status().code(),
            absl::StatusCode::kNotFound);

  // Direct conversations have fixed members.
  const uint64_t carol = MakeUser("carol");
  EXPECT_EQ(log().AddMembers(c.id, alice, {carol}, 0, "", At(5)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log().RemoveMember(c.id, alice, bob, "", At(5)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log().Leave(c.id, alice, "", At(5)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log()
                .SetRole(c.id, alice, bob, MemberRole::MEMBER_ROLE_ADMIN, "",
                         At(5))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_P(MembershipContractTest, ConcurrentGetOrCreateDirectAgrees) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  constexpr int kThreads = 8;
  std::vector<absl::StatusOr<DirectResult>> results(
      kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = i % 2 ? log().GetOrCreateDirect(alice, bob, "", At(1))
                         : log().GetOrCreateDirect(bob, alice, "", At(1));
    });
  }
  for (std::thread& t : threads) t.join();
  int created = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->change.conversation.id, results[0]->change.conversation.id);
    if (r->created) ++created;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(Seqs(ReadAll(results[0]->change.conversation.id)),
            std::vector<uint64_t>{1});
  absl::StatusOr<std::vector<MembershipView>> mine =
      reader().ListMemberships(alice, 0, 100, true);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->size(), 1u);
}

TEST_P(MembershipContractTest, AddMembers) {
  const uint64_t owner = MakeUser("owner");
  const uint64_t admin = MakeUser("admin");
  const uint64_t member = MakeUser("member");
  const uint64_t dave = MakeUser("dave");
  const uint64_t erin = MakeUser("erin");
  const uint64_t g = MakeGroup(owner, {admin, member});
  ASSERT_TRUE(log()
                  .SetRole(g, owner, admin, MemberRole::MEMBER_ROLE_ADMIN, "",
                           At(1))
                  .ok());  // seq 2
  ASSERT_EQ(Send(g, member, "m", "hi"), 3u);

  absl::StatusOr<MemberChange> added =
      log().AddMembers(g, admin, {erin, member, dave, erin}, 5, "add-1", At(9));
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_FALSE(added->duplicate);
  ASSERT_TRUE(added->entry.has_value());
  EXPECT_EQ(added->entry->seq(), 4u);
  EXPECT_EQ(added->entry->sender_id(), admin);
  EXPECT_EQ(added->entry->client_msg_id(), "add-1");
  EXPECT_EQ(added->entry->member_event().kind(), MemberEvent::KIND_ADDED);
  EXPECT_EQ(UserIds(*added->entry), Sorted({dave, erin}));
  EXPECT_EQ(added->affected, Sorted({dave, erin}));
  EXPECT_EQ(added->members_after, Sorted({owner, admin, member, dave, erin}));
  EXPECT_EQ(added->conversation.member_count, 5u);
  EXPECT_EQ(added->conversation.last_seq, 4u);
  absl::StatusOr<MemberRecord> d = reader().GetMember(g, dave);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->role, MemberRole::MEMBER_ROLE_MEMBER);
  EXPECT_EQ(d->joined_seq, 4u);
  EXPECT_EQ(d->joined_at, Stored(At(9)));
  // New members start with everything before their join read.
  EXPECT_EQ(*read_markers().GetReadSeq(dave, g), 3u);
  EXPECT_EQ(*read_markers().GetReadSeq(admin, g), 4u);

  // Only existing members: nothing happens.
  absl::StatusOr<MemberChange> none =
      log().AddMembers(g, owner, {dave, member}, 5, "", At(10));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->entry.has_value());
  EXPECT_THAT(none->affected, IsEmpty());
  EXPECT_EQ(none->conversation.last_seq, 4u);
  EXPECT_TRUE(log().AddMembers(g, owner, {}, 5, "", At(10)).ok());
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2, 3, 4}));

  const uint64_t frank = MakeUser("frank");
  const uint64_t outsider = MakeUser("outsider");
  EXPECT_EQ(log().AddMembers(g, member, {frank}, 0, "", At(11)).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(log().AddMembers(g, owner, {frank}, 5, "", At(11)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log().AddMembers(g, owner, {frank, 999999}, 0, "", At(11))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  absl::Status not_member =
      log().AddMembers(g, outsider, {frank}, 0, "", At(11)).status();
  absl::Status missing =
      log().AddMembers(999999, owner, {frank}, 0, "", At(11)).status();
  EXPECT_EQ(not_member.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(not_member.message(), missing.message());
  EXPECT_EQ(log().AddMembers(g, owner, {frank}, 0, "bad id!", At(11))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(reader().GetConversation(g)->member_count, 5u);
}

TEST_P(MembershipContractTest, FormerMemberRejoinsAtTheNewSeq) {
  const uint64_t owner = MakeUser("owner");
  const uint64_t bob = MakeUser("bob");
  const uint64_t g = MakeGroup(owner, {bob});
  ASSERT_TRUE(log().Leave(g, bob, "", At(1)).ok());  // seq 2
  ASSERT_EQ(Send(g, owner, "m", "while away"), 3u);
  absl::StatusOr<MemberChange> back =
      log().AddMembers(g, owner, {bob}, 0, "", At(2));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->entry->seq(), 4u);
  absl::StatusOr<MemberRecord> m = reader().GetMember(g, bob);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->active());
  EXPECT_FALSE(m->left_at.has_value());
  EXPECT_EQ(m->joined_seq, 4u);
  EXPECT_EQ(m->role, MemberRole::MEMBER_ROLE_MEMBER);
  EXPECT_EQ(back->conversation.member_count, 2u);
  EXPECT_EQ(*read_markers().GetReadSeq(bob, g), 3u);
}

TEST_P(MembershipContractTest, RemoveMemberRoleRules) {
  const uint64_t owner = MakeUser("owner");
  const uint64_t admin = MakeUser("admin");
  const uint64_t admin2 = MakeUser("admin2");
  const uint64_t member = MakeUser("member");
  const uint64_t member2 = MakeUser("member2");
  const uint64_t outsider = MakeUser("outsider");
  const uint64_t g = MakeGroup(owner, {admin, admin2, member, member2});
  for (uint64_t a : {admin, admin2}) {
    ASSERT_TRUE(
        log().SetRole(g, owner, a, MemberRole::MEMBER_ROLE_ADMIN, "", At(1)).ok());
  }  // seqs 2, 3
  auto remove = [&](uint64_t actor, uint64_t user) {
    return log().RemoveMember(g, actor, user, "", At(5)).status().code();
  };
  EXPECT_EQ(remove(member, member2), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(remove(admin, owner), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(remove(admin, admin2), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(remove(admin, admin), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(remove(owner, owner), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(remove(admin, outsider), absl::StatusCode::kNotFound);
  EXPECT_EQ(remove(outsider, member), absl::StatusCode::kNotFound);
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2, 3}));

  absl::StatusOr<MemberChange> removed =
      log().RemoveMember(g, admin, member, "rm-1", At(6));
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_TRUE(removed->entry.has_value());
  EXPECT_EQ(removed->entry->seq(), 4u);
  EXPECT_EQ(removed->entry->sender_id(), admin);
  EXPECT_EQ(removed->entry->member_event().kind(), MemberEvent::KIND_REMOVED);
  EXPECT_EQ(UserIds(*removed->entry), std::vector<uint64_t>{member});
  EXPECT_EQ(removed->affected, std::vector<uint64_t>{member});
  EXPECT_EQ(removed->members_after, Sorted({owner, admin, admin2, member2}));
  EXPECT_EQ(removed->conversation.member_count, 4u);
  absl::StatusOr<MemberRecord> gone = reader().GetMember(g, member);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->active());
  EXPECT_EQ(gone->left_seq, 4u);  // they see their own removal
  EXPECT_EQ(gone->left_at, Stored(At(6)));
  EXPECT_EQ(remove(owner, member), absl::StatusCode::kNotFound);

  ASSERT_TRUE(log().RemoveMember(g, owner, admin2, "", At(7)).ok());
  EXPECT_EQ(reader().GetConversation(g)->member_count, 3u);
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST_P(MembershipContractTest, LeaveHandsOwnershipOn) {
  const uint64_t owner = MakeUser("owner");
  const uint64_t m1 = MakeUser("m1");
  const uint64_t m2 = MakeUser("m2");
  const uint64_t late_admin = MakeUser("late");
  const uint64_t g = MakeGroup(owner, {m2, m1});
  ASSERT_TRUE(log().AddMembers(g, owner, {late_admin}, 0, "", At(1)).ok());
  ASSERT_TRUE(log()
                  .SetRole(g, owner, late_admin, MemberRole::MEMBER_ROLE_ADMIN,
                           "", At(1))
                  .ok());

  // The earliest admin wins over earlier members.
  absl::StatusOr<MemberChange> left = log().Leave(g, owner, "bye", At(2));
  ASSERT_TRUE(left.ok()) << left.status();
  ASSERT_TRUE(left->entry.has_value());
  EXPECT_EQ(left->entry->seq(), 4u);
  EXPECT_EQ(left->entry->sender_id(), owner);
  EXPECT_EQ(left->entry->client_msg_id(), "bye");
  EXPECT_EQ(left->entry->member_event().kind(), MemberEvent::KIND_LEFT);
  EXPECT_EQ(UserIds(*left->entry), std::vector<uint64_t>{owner});
  EXPECT_EQ(left->affected, std::vector<uint64_t>{owner});
  EXPECT_EQ(left->members_after, Sorted({m1, m2, late_admin}));
  EXPECT_EQ(left->conversation.member_count, 3u);
  EXPECT_EQ(reader().GetMember(g, late_admin)->role,
            MemberRole::MEMBER_ROLE_OWNER);
  EXPECT_EQ(reader().GetMember(g, owner)->left_seq, 4u);
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(log().Leave(g, owner, "", At(3)).status().code(),
            absl::StatusCode::kNotFound);

  // Without admins, the earliest-joined member (then the lowest id).
  ASSERT_TRUE(log().Leave(g, late_admin, "", At(3)).ok());
  const uint64_t next = std::min(m1, m2);
  EXPECT_EQ(reader().GetMember(g, next)->role, MemberRole::MEMBER_ROLE_OWNER);
  EXPECT_EQ(reader().GetMember(g, std::max(m1, m2))->role,
            MemberRole::MEMBER_ROLE_MEMBER);

  ASSERT_TRUE(log().Leave(g, std::max(m1, m2), "", At(4)).ok());
  absl::StatusOr<MemberChange> last = log().Leave(g, next, "", At(5));
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_THAT(last->members_after, IsEmpty());
  EXPECT_EQ(last->conversation.member_count, 0u);
  EXPECT_EQ(reader().GetConversation(g)->last_seq, 7u);
}

TEST_P(MembershipContractTest, SetRole) {
  const uint64_t owner = MakeUser("owner");
  const uint64_t bob = MakeUser("bob");
  const uint64_t carol = MakeUser("carol");
  const uint64_t outsider = MakeUser("outsider");
  const uint64_t g = MakeGroup(owner, {bob, carol});
  absl::StatusOr<MemberChange> promoted =
      log().SetRole(g, owner, bob, MemberRole::MEMBER_ROLE_ADMIN, "r1", At(2));
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  ASSERT_TRUE(promoted->entry.has_value());
  EXPECT_EQ(promoted->entry->seq(), 2u);
  EXPECT_EQ(promoted->entry->member_event().kind(),
            MemberEvent::KIND_ROLE_CHANGED);
  EXPECT_EQ(promoted->entry->member_event().role(),
            MemberRole::MEMBER_ROLE_ADMIN);
  EXPECT_EQ(UserIds(*promoted->entry), std::vector<uint64_t>{bob});
  EXPECT_EQ(promoted->affected, std::vector<uint64_t>{bob});
  EXPECT_EQ(reader().GetMember(g, bob)->role, MemberRole::MEMBER_ROLE_ADMIN);

  absl::StatusOr<MemberChange> same =
      log().SetRole(g, owner, bob, MemberRole::MEMBER_ROLE_ADMIN, "", At(3));
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->entry.has_value());
  EXPECT_EQ(same->conversation.last_seq, 2u);

  auto set = [&](uint64_t actor, uint64_t user, MemberRole role) {
    return log().SetRole(g, actor, user, role, "", At(4)).status().code();
  };
  EXPECT_EQ(set(bob, carol, MemberRole::MEMBER_ROLE_ADMIN),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(set(owner, owner, MemberRole::MEMBER_ROLE_MEMBER),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(set(owner, carol, MemberRole::MEMBER_ROLE_OWNER),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set(owner, carol, MemberRole::MEMBER_ROLE_UNSPECIFIED),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set(owner, outsider, MemberRole::MEMBER_ROLE_ADMIN),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(set(outsider, carol, MemberRole::MEMBER_ROLE_ADMIN),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2}));

  ASSERT_TRUE(log()
                  .SetRole(g, owner, bob, MemberRole::MEMBER_ROLE_MEMBER, "",
                           At(5))
                  .ok());
  EXPECT_EQ(reader().GetMember(g, bob)->role, MemberRole::MEMBER_ROLE_MEMBER);
}

TEST_P(MembershipContractTest, ReusedClientMsgIdReplaysTheChange) {
  const uint64_t owner = MakeUser("owner");
  const uint64_t bob = MakeUser("bob");
  const uint64_t carol = MakeUser("carol");
  const uint64_t g = MakeGroup(owner, {});
  absl::StatusOr<MemberChange> first =
      log().AddMembers(g, owner, {bob}, 0, "req-7", At(1));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<MemberChange> retry =
      log().AddMembers(g, owner, {carol}, 0, "req-7", At(2));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  ASSERT_TRUE(retry->entry.has_value());
  EXPECT_TRUE(SameEntry(*retry->entry, *first->entry));
  EXPECT_EQ(retry->affected, std::vector<uint64_t>{bob});
  EXPECT_EQ(retry->members_after, Sorted({owner, bob}));
  EXPECT_EQ(reader().GetMember(g, carol).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2}));

  // A message's id is taken too: the change is a duplicate of the message.
  ASSERT_EQ(Send(g, owner, "msg-1", "hello"), 3u);
  absl::StatusOr<MemberChange> clash =
      log().SetRole(g, owner, bob, MemberRole::MEMBER_ROLE_ADMIN, "msg-1", At(3));
  ASSERT_TRUE(clash.ok());
  EXPECT_TRUE(clash->duplicate);
  EXPECT_EQ(clash->entry->seq(), 3u);
  EXPECT_EQ(reader().GetMember(g, bob)->role, MemberRole::MEMBER_ROLE_MEMBER);
}

TEST_P(MembershipContractTest, ServerChosenIdsNeverCollide) {
  const uint64_t owner = MakeUser("owner");
  std::vector<uint64_t> users;
  for (int i = 0; i < 4; ++i) users.push_back(MakeUser(absl::StrCat("u", i)));
  const uint64_t g = MakeGroup(owner, {});
  std::set<std::string> ids;
  for (uint64_t u : users) {
    absl::StatusOr<MemberChange> c = log().AddMembers(g, owner, {u}, 0, "", At(1));
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(c->duplicate);
    ids.insert(c->entry->client_msg_id());
  }
  EXPECT_EQ(ids.size(), users.size());
  EXPECT_EQ(reader().GetConversation(g)->member_count, 5u);
}

}  // namespace
}  // namespace im::storage::testing
