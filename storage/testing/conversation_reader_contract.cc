#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/testing/store_contract.h"

namespace im::storage::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST_P(ConversationReaderContractTest, ReadAfterBounds) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t g = MakeGroup(alice, {});
  for (int i = 2; i <= 10; ++i) {
    ASSERT_EQ(Send(g, alice, absl::StrCat("m", i), absl::StrCat("text ", i)),
              static_cast<uint64_t>(i));
  }
  auto read_after = [&](uint64_t after, uint64_t max, uint32_t limit) {
    absl::StatusOr<std::vector<Entry>> got =
        reader().ReadAfter(g, after, max, limit);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? Seqs(*got) : std::vector<uint64_t>{};
  };
  EXPECT_THAT(read_after(0, 100, 3), ElementsAre(1, 2, 3));
  EXPECT_THAT(read_after(3, 100, 3), ElementsAre(4, 5, 6));
  EXPECT_THAT(read_after(7, 100, 10), ElementsAre(8, 9, 10));
  EXPECT_THAT(read_after(2, 5, 10), ElementsAre(3, 4, 5));
  EXPECT_THAT(read_after(10, 100, 10), IsEmpty());
  EXPECT_THAT(read_after(5, 5, 10), IsEmpty());
  EXPECT_THAT(read_after(0, 100, 0), IsEmpty());
  absl::StatusOr<std::vector<Entry>> unknown =
      reader().ReadAfter(999999, 0, 100, 10);
  ASSERT_TRUE(unknown.ok());
  EXPECT_THAT(*unknown, IsEmpty());

  absl::StatusOr<std::vector<Entry>> full = reader().ReadAfter(g, 4, 5, 10);
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), 1u);
  EXPECT_EQ((*full)[0].message().text(), "text 5");
  EXPECT_EQ((*full)[0].client_msg_id(), "m5");
  EXPECT_EQ((*full)[0].sender_id(), alice);
  EXPECT_EQ((*full)[0].conversation_id(), g);
}

TEST_P(ConversationReaderContractTest, ReadBeforeBounds) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t g = MakeGroup(alice, {});
  for (int i = 2; i <= 10; ++i) {
    ASSERT_EQ(Send(g, alice, absl::StrCat("m", i), "x"),
              static_cast<uint64_t>(i));
  }
  auto read_before = [&](uint64_t before, uint64_t min, uint32_t limit) {
    absl::StatusOr<std::vector<Entry>> got =
        reader().ReadBefore(g, before, min, limit);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? Seqs(*got) : std::vector<uint64_t>{};
  };
  EXPECT_THAT(read_before(11, 0, 3), ElementsAre(8, 9, 10));
  EXPECT_THAT(read_before(UINT64_MAX, 1, 3), ElementsAre(8, 9, 10));
  EXPECT_THAT(read_before(8, 0, 3), ElementsAre(5, 6, 7));
  EXPECT_THAT(read_before(8, 6, 10), ElementsAre(6, 7));
  EXPECT_THAT(read_before(3, 0, 10), ElementsAre(1, 2));
  EXPECT_THAT(read_before(1, 0, 10), IsEmpty());
  EXPECT_THAT(read_before(0, 0, 10), IsEmpty());
  EXPECT_THAT(read_before(11, 0, 0), IsEmpty());
  EXPECT_THAT(*reader().ReadBefore(999999, 10, 0, 10), IsEmpty());
}

TEST_P(ConversationReaderContractTest, ReadSeqs) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t g = MakeGroup(alice, {});
  for (int i = 2; i <= 5; ++i) Send(g, alice, absl::StrCat("m", i), "x");
  absl::StatusOr<std::vector<Entry>> got =
      reader().ReadSeqs(g, {5, 0, 2, 99, 2, 4});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(Seqs(*got), ElementsAre(2, 4, 5));
  EXPECT_THAT(*reader().ReadSeqs(g, {}), IsEmpty());
  EXPECT_THAT(*reader().ReadSeqs(999999, {1}), IsEmpty());
}

TEST_P(ConversationReaderContractTest, GetConversationAndMember) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t g = MakeGroup(alice, {});
  absl::Status missing = reader().GetConversation(999999).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  absl::Status never = reader().GetMember(g, bob).status();
  absl::Status no_conversation = reader().GetMember(999999, alice).status();
  EXPECT_EQ(never.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(no_conversation.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(never.message(), no_conversation.message());
  EXPECT_EQ(never.message(), missing.message());
}

TEST_P(ConversationReaderContractTest, GetMembershipView) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t carol = MakeUser("carol");
  const uint64_t g = MakeGroup(alice, {bob}, At(1));
  Send(g, alice, "a1", "one", At(2));
  Send(g, alice, "a2", "two", At(3));
  ASSERT_TRUE(read_markers().MarkRead(bob, g, 2, At(4)).ok());
  ASSERT_TRUE(log().RemoveMember(g, alice, bob, "", At(5)).ok());
  Send(g, alice, "a3", "three", At(6));

  absl::StatusOr<MembershipView> owner = reader().GetMembershipView(alice, g);
  ASSERT_TRUE(owner.ok()) << owner.status();
  EXPECT_EQ(owner->conversation.id, g);
  EXPECT_EQ(owner->conversation.last_seq, 5u);
  EXPECT_EQ(owner->conversation.member_count, 1u);
  EXPECT_EQ(owner->conversation.last_activity_at, Stored(At(6)));
  EXPECT_EQ(owner->member.user_id, alice);
  EXPECT_EQ(owner->member.role, MemberRole::MEMBER_ROLE_OWNER);
  EXPECT_TRUE(owner->member.active());
  EXPECT_EQ(owner->read_seq, 5u);  // her own entries

  // A former member's row, with where it ended.
  absl::StatusOr<MembershipView> former = reader().GetMembershipView(bob, g);
  ASSERT_TRUE(former.ok()) << former.status();
  EXPECT_EQ(former->member.joined_seq, 1u);
  ASSERT_TRUE(former->member.left_seq.has_value());
  EXPECT_EQ(*former->member.left_seq, 4u);
  EXPECT_EQ(former->read_seq, 2u);

  const absl::Status never = reader().GetMembershipView(carol, g).status();
  const absl::Status missing =
      reader().GetMembershipView(alice, 999999).status();
  EXPECT_EQ(never.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(never.message(), missing.message());
  EXPECT_EQ(never.message(), reader().GetMember(g, carol).status().message());
}

TEST_P(ConversationReaderContractTest, ListMembersPages) {
  const uint64_t owner = MakeUser("owner");
  std::vector<uint64_t> all = {owner};
  for (int i = 0; i < 6; ++i) all.push_back(MakeUser(absl::StrCat("u", i)));
  const uint64_t g = MakeGroup(owner, all);
  std::sort(all.begin(), all.end());
  ASSERT_TRUE(log().RemoveMember(g, owner, all[0] == owner ? all[1] : all[0],
                                 "", At(1))
                  .ok());
  std::vector<uint64_t> active = all;
  active.erase(active.begin() + (all[0] == owner ? 1 : 0));

  std::vector<uint64_t> paged;
  uint64_t after = 0;
  for (;;) {
    absl::StatusOr<std::vector<MemberRecord>> page =
        reader().ListMembers(g, after, 4);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    EXPECT_LE(page->size(), 4u);
    for (const MemberRecord& m : *page) {
      EXPECT_TRUE(m.active());
      EXPECT_EQ(m.conversation_id, g);
      paged.push_back(m.user_id);
    }
    after = page->back().user_id;
  }
  EXPECT_EQ(paged, active);
  absl::StatusOr<std::vector<uint64_t>> ids = reader().ListActiveMemberIds(g);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, active);

  EXPECT_EQ(reader().ListMembers(999999, 0, 10).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(reader().ListActiveMemberIds(999999).status().code(),
            absl::StatusCode::kNotFound);
  // An empty group still exists.
  const uint64_t solo = MakeUser("solo");
  const uint64_t empty = MakeGroup(solo, {});
  ASSERT_TRUE(log().Leave(empty, solo, "", At(2)).ok());
  EXPECT_THAT(*reader().ListMembers(empty, 0, 10), IsEmpty());
  EXPECT_THAT(*reader().ListActiveMemberIds(empty), IsEmpty());
}

TEST_P(ConversationReaderContractTest, ListMembershipsIncludingLeft) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  std::vector<uint64_t> groups;
  for (int i = 0; i < 5; ++i) groups.push_back(MakeGroup(bob, {alice}));
  ASSERT_TRUE(log().Leave(groups[1], alice, "", At(3)).ok());
  ASSERT_TRUE(log().RemoveMember(groups[3], bob, alice, "", At(3)).ok());
  ASSERT_EQ(Send(groups[0], alice, "x", "hello"), 2u);
  ASSERT_TRUE(read_markers().MarkRead(alice, groups[2], 1, At(4)).ok());

  auto ids = [](const std::vector<MembershipView>& views) {
    std::vector<uint64_t> out;
    for (const MembershipView& v : views) out.push_back(v.conversation.id);
    return out;
  };
  absl::StatusOr<std::vector<MembershipView>> active =
      reader().ListMemberships(alice, 0, 100, false);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(ids(*active),
            (std::vector<uint64_t>{groups[0], groups[2], groups[4]}));
  EXPECT_EQ((*active)[0].read_seq, 2u);
  EXPECT_EQ((*active)[0].conversation.last_seq, 2u);
  EXPECT_EQ((*active)[0].member.user_id, alice);
  EXPECT_EQ((*active)[0].member.role, MemberRole::MEMBER_ROLE_MEMBER);
  EXPECT_EQ((*active)[1].read_seq, 1u);
  EXPECT_EQ((*active)[2].read_seq, 0u);

  absl::StatusOr<std::vector<MembershipView>> all =
      reader().ListMemberships(alice, 0, 100, true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(ids(*all), groups);
  EXPECT_EQ((*all)[1].member.left_seq, 2u);
  EXPECT_EQ((*all)[3].member.left_seq, 2u);

  absl::StatusOr<std::vector<MembershipView>> page =
      reader().ListMemberships(alice, groups[1], 2, true);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(ids(*page), (std::vector<uint64_t>{groups[2], groups[3]}));
  page = reader().ListMemberships(alice, groups[1], 2, false);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(ids(*page), (std::vector<uint64_t>{groups[2], groups[4]}));
}

TEST_P(ConversationReaderContractTest, ListConversationsPageOrderAndCursor) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  // Activity: c0 at 10, c1 at 30, c2 at 20, c3 at 20 (tie: higher id
  // first), c4 left by alice, c5 at 5 with no message after creation.
  std::vector<uint64_t> c;
  for (int i = 0; i < 6; ++i) c.push_back(MakeGroup(bob, {alice}, At(1)));
  const uint64_t c5 = MakeGroup(bob, {alice}, At(5));
  Send(c[0], bob, "a", "zero", At(10));
  Send(c[1], alice, "b", "one", At(30));
  Send(c[2], bob, "c", "two", At(20));
  Send(c[3], bob, "d", "three", At(20));
  Send(c[4], bob, "e", "four", At(40));
  ASSERT_TRUE(log().Leave(c[4], alice, "", At(41)).ok());
  // c[5] keeps its creation time, At(1).

  auto page = [&](std::optional<ConversationPageCursor> after,
                  uint32_t limit) {
    absl::StatusOr<std::vector<ConversationListRow>> rows =
        reader().ListConversationsPage(alice, after, limit);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<ConversationListRow>{};
  };
  const std::vector<uint64_t> expected = {c[1], std::max(c[2], c[3]),
                                          std::min(c[2], c[3]), c[0], c5, c[5]};
  std::vector<uint64_t> got;
  std::optional<ConversationPageCursor> cursor;
  for (;;) {
    std::vector<ConversationListRow> rows = page(cursor, 2);
    if (rows.empty()) break;
    EXPECT_LE(rows.size(), 2u);
    for (const ConversationListRow& r : rows) got.push_back(r.view.conversation.id);
    cursor = ConversationPageCursor{rows.back().view.conversation.last_activity_at,
                                    rows.back().view.conversation.id};
  }
  EXPECT_EQ(got, expected);

  std::vector<ConversationListRow> first = page(std::nullopt, 10);
  ASSERT_EQ(first.size(), 6u);
  const ConversationListRow& top = first[0];
  EXPECT_EQ(top.view.conversation.last_activity_at, Stored(At(30)));
  EXPECT_EQ(top.view.conversation.last_seq, 2u);
  EXPECT_EQ(top.view.read_seq, 2u);  // her own message
  EXPECT_EQ(top.view.member.user_id, alice);
  ASSERT_TRUE(top.last_entry.has_value());
  EXPECT_EQ(top.last_entry->seq(), 2u);
  EXPECT_EQ(top.last_entry->message().text(), "one");
  EXPECT_EQ(first[3].view.read_seq, 0u);
  ASSERT_TRUE(first[5].last_entry.has_value());
  EXPECT_EQ(first[5].last_entry->member_event().kind(),
            ::im::message::v1::MemberEvent::KIND_CREATED);
  EXPECT_THAT(page(std::nullopt, 0), IsEmpty());
  EXPECT_THAT(*reader().ListConversationsPage(999999, std::nullopt, 10),
              IsEmpty());
}

// The list order follows every kind of write: batches spanning several
// conversations, membership changes (seen by old and new members alike),
// a rejoin, and a write stamped earlier than the current activity (which
// must not move a conversation back).
TEST_P(ConversationReaderContractTest, ListConversationsPageFollowsEveryWrite) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t carol = MakeUser("carol");
  const uint64_t g1 = MakeGroup(alice, {bob}, At(1));
  const uint64_t g2 = MakeGroup(alice, {bob, carol}, At(2));
  const uint64_t g3 = MakeGroup(bob, {alice}, At(3));
  absl::StatusOr<DirectResult> direct =
      log().GetOrCreateDirect(alice, bob, "", At(4));
  ASSERT_TRUE(direct.ok()) << direct.status();
  const uint64_t d = direct->change.conversation.id;

  auto order = [&](uint64_t user) {
    std::vector<uint64_t> ids;
    absl::StatusOr<std::vector<ConversationListRow>> rows =
        reader().ListConversationsPage(user, std::nullopt, 100);
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return ids;
    for (const ConversationListRow& row : *rows) {
      ids.push_back(row.view.conversation.id);
    }
    return ids;
  };
  EXPECT_EQ(order(alice), (std::vector<uint64_t>{d, g3, g2, g1}));

  // One batch writing to g1 and g2 moves both above the others.
  std::vector<AppendRequest> batch(2);
  batch[0].conversation_id = g1;
  batch[0].sender_id = bob;
  batch[0].client_msg_id = "b1";
  batch[0].message.set_text("one");
  batch[1].conversation_id = g2;
  batch[1].sender_id = alice;
  batch[1].client_msg_id = "a2";
  batch[1].message.set_text("two");
  ASSERT_TRUE(log().AppendMessages(batch, At(10)).ok());
  EXPECT_EQ(order(alice), (std::vector<uint64_t>{g2, g1, d, g3}));
  EXPECT_EQ(order(bob), (std::vector<uint64_t>{g2, g1, d, g3}));

  // A write stamped earlier does not move g3 back or g1 down.
  Send(g1, bob, "late", "late", At(5));
  Send(g3, bob, "g3", "three", At(11));
  EXPECT_EQ(order(alice), (std::vector<uint64_t>{g3, g2, g1, d}));

  // Adding carol to g1 is activity for everyone in it, carol included.
  const uint64_t carol_ids[] = {carol};
  ASSERT_TRUE(log().AddMembers(g1, alice, carol_ids, 0, "", At(12)).ok());
  EXPECT_EQ(order(alice), (std::vector<uint64_t>{g1, g3, g2, d}));
  EXPECT_EQ(order(carol), (std::vector<uint64_t>{g1, g2}));

  // Removed from g2, then added back: g2 returns at the rejoin's time.
  ASSERT_TRUE(log().RemoveMember(g2, alice, carol, "", At(13)).ok());
  EXPECT_EQ(order(carol), (std::vector<uint64_t>{g1}));
  EXPECT_EQ(order(bob), (std::vector<uint64_t>{g2, g1, g3, d}));
  Send(g1, bob, "b2", "more", At(14));
  ASSERT_TRUE(log().AddMembers(g2, alice, carol_ids, 0, "", At(15)).ok());
  EXPECT_EQ(order(carol), (std::vector<uint64_t>{g2, g1}));
  ASSERT_TRUE(log().SetRole(g3, bob, alice, MemberRole::MEMBER_ROLE_ADMIN, "",
                            At(16))
                  .ok());
  EXPECT_EQ(order(alice), (std::vector<uint64_t>{g3, g2, g1, d}));
  ASSERT_TRUE(log().Leave(g3, bob, "", At(17)).ok());
  EXPECT_EQ(order(alice), (std::vector<uint64_t>{g3, g2, g1, d}));
  EXPECT_EQ(order(bob), (std::vector<uint64_t>{g2, g1, d}));

  // Each row's cursor is the conversation's own activity.
  absl::StatusOr<std::vector<ConversationListRow>> rows =
      reader().ListConversationsPage(alice, std::nullopt, 100);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[0].view.conversation.last_activity_at, Stored(At(17)));
  EXPECT_EQ((*rows)[1].view.conversation.last_activity_at, Stored(At(15)));
  EXPECT_EQ((*rows)[2].view.conversation.last_activity_at, Stored(At(14)));
  absl::StatusOr<std::vector<ConversationListRow>> after =
      reader().ListConversationsPage(
          alice,
          ConversationPageCursor{(*rows)[1].view.conversation.last_activity_at,
                                 (*rows)[1].view.conversation.id},
          100);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].view.conversation.id, g1);
  EXPECT_EQ((*after)[1].view.conversation.id, d);
}

TEST_P(ConversationReaderContractTest, UsersSharingConversation) {
  const uint64_t viewer = MakeUser("viewer");
  const uint64_t friend_ = MakeUser("friend");
  const uint64_t former = MakeUser("former");
  const uint64_t stranger = MakeUser("stranger");
  const uint64_t through_left = MakeUser("through_left");
  const uint64_t g = MakeGroup(viewer, {friend_, former});
  ASSERT_TRUE(log().Leave(g, former, "", At(1)).ok());
  const uint64_t h = MakeGroup(through_left, {viewer});
  ASSERT_TRUE(log().Leave(h, viewer, "", At(1)).ok());
  ASSERT_TRUE(log().GetOrCreateDirect(stranger, former, "", At(1)).ok());

  absl::StatusOr<std::vector<uint64_t>> shared =
      reader().UsersSharingConversation(
          viewer, {stranger, former, friend_, viewer, through_left, 999999,
                   friend_});
  ASSERT_TRUE(shared.ok()) << shared.status();
  std::vector<uint64_t> expected = {viewer, friend_};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(*shared, expected);
  EXPECT_THAT(*reader().UsersSharingConversation(viewer, {}), IsEmpty());
  EXPECT_EQ(*reader().UsersSharingConversation(stranger, {stranger}),
            std::vector<uint64_t>{stranger});
}

}  // namespace
}  // namespace im::storage::testing
