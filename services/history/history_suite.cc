#include "services/history/history_suite.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/proto_time.h"

namespace im::history::testing {
namespace {

using ::im::message::v1::CONVERSATION_KIND_DIRECT;
using ::im::message::v1::MEMBER_ROLE_MEMBER;
using ::im::message::v1::MEMBER_ROLE_OWNER;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

}  // namespace

void HistorySuiteTest::SetUp() {
  db_ = GetParam().make();
  ASSERT_NE(db_, nullptr) << "could not make a " << GetParam().name
                          << " database";
  UseOptions(ConversationHistoryOptions{});
}

void HistorySuiteTest::UseOptions(const ConversationHistoryOptions& options) {
  absl::StatusOr<std::unique_ptr<ConversationHistory>> history =
      ConversationHistory::Create(options, db_->reader());
  ASSERT_TRUE(history.ok()) << history.status();
  history_ = *std::move(history);
}

absl::Time HistorySuiteTest::At(double seconds) {
  return absl::FromUnixSeconds(1700000000) + absl::Seconds(seconds);
}

uint64_t HistorySuiteTest::MakeUser(const std::string& name) {
  storage::NewUser user;
  user.username = name;
  user.username_norm = absl::AsciiStrToLower(name);
  user.display_name = name;
  user.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
  user.created_at = At(0);
  absl::StatusOr<storage::UserRecord> created = db_->users()->CreateUser(user);
  EXPECT_TRUE(created.ok()) << created.status();
  return created.ok() ? created->id : 0;
}

uint64_t HistorySuiteTest::MakeGroup(uint64_t owner,
                                     std::vector<uint64_t> members,
                                     absl::Time now) {
  absl::StatusOr<storage::MemberChange> change =
      db_->log()->CreateGroup(owner, "group", members, 0, "", now);
  EXPECT_TRUE(change.ok()) << change.status();
  return change.ok() ? change->conversation.id : 0;
}

uint64_t HistorySuiteTest::MakeDirect(uint64_t a, uint64_t b, absl::Time now) {
  absl::StatusOr<storage::DirectResult> direct =
      db_->log()->GetOrCreateDirect(a, b, "", now);
  EXPECT_TRUE(direct.ok()) << direct.status();
  return direct.ok() ? direct->change.conversation.id : 0;
}

std::vector<uint64_t> HistorySuiteTest::Send(uint64_t conversation_id,
                                             uint64_t sender, int count,
                                             absl::Time now) {
  std::vector<storage::AppendRequest> batch;
  for (int i = 0; i < count; ++i) {
    storage::AppendRequest request;
    request.conversation_id = conversation_id;
    request.sender_id = sender;
    request.client_msg_id = absl::StrCat("m", next_client_msg_id_++);
    request.message.set_text(absl::StrCat("text ", request.client_msg_id));
    batch.push_back(std::move(request));
  }
  std::vector<uint64_t> seqs;
  absl::StatusOr<std::vector<storage::AppendOutcome>> outcomes =
      db_->log()->AppendMessages(batch, now);
  EXPECT_TRUE(outcomes.ok()) << outcomes.status();
  if (!outcomes.ok()) return seqs;
  for (const storage::AppendOutcome& outcome : *outcomes) {
    EXPECT_TRUE(outcome.status.ok()) << outcome.status;
    seqs.push_back(outcome.entry.seq());
  }
  return seqs;
}

uint64_t HistorySuiteTest::AddMember(uint64_t conversation_id, uint64_t actor,
                                     uint64_t user, absl::Time now) {
  const uint64_t users[] = {user};
  absl::StatusOr<storage::MemberChange> change =
      db_->log()->AddMembers(conversation_id, actor, users, 0, "", now);
  EXPECT_TRUE(change.ok()) << change.status();
  return change.ok() && change->entry.has_value() ? change->entry->seq() : 0;
}

uint64_t HistorySuiteTest::RemoveMember(uint64_t conversation_id,
                                        uint64_t actor, uint64_t user,
                                        absl::Time now) {
  absl::StatusOr<storage::MemberChange> change =
      db_->log()->RemoveMember(conversation_id, actor, user, "", now);
  EXPECT_TRUE(change.ok()) << change.status();
  return change.ok() && change->entry.has_value() ? change->entry->seq() : 0;
}

v1::GetHistoryResponse HistorySuiteTest::Page(uint64_t user,
                                              uint64_t conversation_id,
                                              v1::Direction direction,
                                              uint64_t anchor,
                                              uint32_t limit) {
  v1::GetHistoryRequest request;
  request.set_conversation_id(conversation_id);
  request.set_direction(direction);
  request.set_anchor_seq(anchor);
  request.set_limit(limit);
  absl::StatusOr<v1::GetHistoryResponse> page =
      history_->GetHistory(user, request);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? *std::move(page) : v1::GetHistoryResponse();
}

std::vector<uint64_t> HistorySuiteTest::Seqs(
    const v1::GetHistoryResponse& page) {
  std::vector<uint64_t> seqs;
  for (const auto& entry : page.entries()) seqs.push_back(entry.seq());
  return seqs;
}

std::vector<uint64_t> HistorySuiteTest::Seqs(
    const v1::GetMessagesResponse& found) {
  std::vector<uint64_t> seqs;
  for (const auto& entry : found.entries()) seqs.push_back(entry.seq());
  return seqs;
}

std::vector<uint64_t> HistorySuiteTest::Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> seqs;
  for (uint64_t s = first; s <= last; ++s) seqs.push_back(s);
  return seqs;
}

namespace {

// ---- GetHistory ----------------------------------------------------------

TEST_P(HistorySuiteTest, BackwardPagesCoverTheLogExactlyOnce) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t group = MakeGroup(alice, {bob}, At(1));
  Send(group, alice, 120, At(2));
  Send(group, bob, 117, At(3));  // seq 1 is KIND_CREATED: 238 entries

  std::vector<uint64_t> seen;
  uint64_t anchor = 0;
  int pages = 0;
  while (true) {
    const v1::GetHistoryResponse page =
        Page(bob, group, v1::DIRECTION_BEFORE, anchor, 50);
    ASSERT_FALSE(page.entries().empty());
    EXPECT_EQ(page.last_seq(), 238u);
    const std::vector<uint64_t> seqs = Seqs(page);
    const uint64_t top = anchor == 0 ? 238 : anchor - 1;
    EXPECT_EQ(seqs, Range(seqs.front(), top)) << "page " << pages;
    seen.insert(seen.begin(), seqs.begin(), seqs.end());
    anchor = seqs.front();
    ++pages;
    if (!page.has_more()) break;
    EXPECT_EQ(seqs.size(), 50u);
  }
  EXPECT_EQ(pages, 5);
  EXPECT_EQ(seen, Range(1, 238));
  EXPECT_EQ(anchor, 1u);
  // Before seq 1 there is nothing.
  const v1::GetHistoryResponse past = Page(bob, group, v1::DIRECTION_BEFORE, 1, 50);
  EXPECT_THAT(Seqs(past), IsEmpty());
  EXPECT_FALSE(past.has_more());
}

TEST_P(HistorySuiteTest, ForwardPagesCoverTheLogExactlyOnce) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  Send(group, alice, 99, At(2));  // seqs 1..100

  std::vector<uint64_t> seen;
  uint64_t anchor = 0;
  std::vector<bool> more;
  while (true) {
    const v1::GetHistoryResponse page =
        Page(alice, group, v1::DIRECTION_AFTER, anchor, 30);
    const std::vector<uint64_t> seqs = Seqs(page);
    ASSERT_FALSE(seqs.empty());
    EXPECT_EQ(seqs, Range(anchor + 1, seqs.back()));
    seen.insert(seen.end(), seqs.begin(), seqs.end());
    anchor = seqs.back();
    more.push_back(page.has_more());
    if (!page.has_more()) break;
  }
  EXPECT_THAT(more, ElementsAre(true, true, true, false));
  EXPECT_EQ(seen, Range(1, 100));
  // A page that ends exactly at the newest entry says there is no more.
  const v1::GetHistoryResponse exact =
      Page(alice, group, v1::DIRECTION_AFTER, 80, 20);
  EXPECT_EQ(Seqs(exact), Range(81, 100));
  EXPECT_FALSE(exact.has_more());
  const v1::GetHistoryResponse end =
      Page(alice, group, v1::DIRECTION_AFTER, 100, 20);
  EXPECT_THAT(Seqs(end), IsEmpty());
  EXPECT_FALSE(end.has_more());
  EXPECT_EQ(end.last_seq(), 100u);
}

TEST_P(HistorySuiteTest, BackwardAndForwardPagesMeetAtTheAnchor) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  Send(group, alice, 199, At(2));  // seqs 1..200

  const v1::GetHistoryResponse older =
      Page(alice, group, v1::DIRECTION_BEFORE, 120, 50);
  const v1::GetHistoryResponse newer =
      Page(alice, group, v1::DIRECTION_AFTER, 119, 50);
  EXPECT_EQ(Seqs(older), Range(70, 119));
  EXPECT_TRUE(older.has_more());
  EXPECT_EQ(Seqs(newer), Range(120, 169));
  EXPECT_TRUE(newer.has_more());
  // Unspecified direction is BEFORE; an anchor beyond the end is the end.
  EXPECT_EQ(Seqs(Page(alice, group, v1::DIRECTION_UNSPECIFIED, 0, 3)),
            Range(198, 200));
  EXPECT_EQ(Seqs(Page(alice, group, v1::DIRECTION_BEFORE, 5000, 3)),
            Range(198, 200));
  // The last page before the start is short and final.
  const v1::GetHistoryResponse first =
      Page(alice, group, v1::DIRECTION_BEFORE, 11, 50);
  EXPECT_EQ(Seqs(first), Range(1, 10));
  EXPECT_FALSE(first.has_more());
  const v1::GetHistoryResponse exact_first =
      Page(alice, group, v1::DIRECTION_BEFORE, 11, 10);
  EXPECT_EQ(Seqs(exact_first), Range(1, 10));
  EXPECT_FALSE(exact_first.has_more());
}

TEST_P(HistorySuiteTest, PagesStayStableWhileSendsContinue) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t group = MakeGroup(alice, {bob}, At(1));
  Send(group, alice, 59, At(2));  // 1..60

  const v1::GetHistoryResponse newest =
      Page(bob, group, v1::DIRECTION_BEFORE, 0, 20);
  EXPECT_EQ(Seqs(newest), Range(41, 60));
  Send(group, bob, 25, At(3));  // 61..85 arrive while bob pages back
  const v1::GetHistoryResponse older =
      Page(bob, group, v1::DIRECTION_BEFORE, 41, 20);
  EXPECT_EQ(Seqs(older), Range(21, 40));
  EXPECT_EQ(older.last_seq(), 85u);
  Send(group, alice, 5, At(4));  // 86..90
  const v1::GetHistoryResponse oldest =
      Page(bob, group, v1::DIRECTION_BEFORE, 21, 20);
  EXPECT_EQ(Seqs(oldest), Range(1, 20));
  EXPECT_FALSE(oldest.has_more());
  // Catching up forward from the first page's newest entry.
  const v1::GetHistoryResponse caught_up =
      Page(bob, group, v1::DIRECTION_AFTER, 60, 50);
  EXPECT_EQ(Seqs(caught_up), Range(61, 90));
  EXPECT_FALSE(caught_up.has_more());
}

TEST_P(HistorySuiteTest, PagesStayExactWhileAnotherThreadSends) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t group = MakeGroup(alice, {bob}, At(1));
  Send(group, alice, 299, At(2));  // 1..300

  // Bob keeps sending small batches while alice pages both ways.
  std::atomic<bool> stop{false};
  std::atomic<int> batches{0};
  std::thread sender;
  // Joined on every way out of the test, failed assertions included.
  auto stop_sender = [&] {
    stop.store(true);
    if (sender.joinable()) sender.join();
  };
  const auto joined = absl::MakeCleanup(stop_sender);
  sender = std::thread([&] {
    for (int i = 0; !stop.load() && i < 400; ++i) {
      std::vector<storage::AppendRequest> batch;
      for (int j = 0; j < 3; ++j) {
        storage::AppendRequest request;
        request.conversation_id = group;
        request.sender_id = bob;
        request.client_msg_id = absl::StrCat("live-", i, "-", j);
        request.message.set_text("live");
        batch.push_back(std::move(request));
      }
      absl::StatusOr<std::vector<storage::AppendOutcome>> outcomes =
          db_->log()->AppendMessages(batch, At(3 + i));
      EXPECT_TRUE(outcomes.ok()) << outcomes.status();
      ++batches;
    }
  });

  const v1::GetHistoryResponse newest =
      Page(alice, group, v1::DIRECTION_BEFORE, 0, 50);
  const uint64_t top = newest.last_seq();
  EXPECT_GE(top, 300u);
  EXPECT_EQ(Seqs(newest), Range(top - 49, top));

  // Backward from the first page: every page is exactly the 50 before.
  std::vector<uint64_t> older;
  for (uint64_t anchor = top - 49; anchor > 1;) {
    const v1::GetHistoryResponse page =
        Page(alice, group, v1::DIRECTION_BEFORE, anchor, 50);
    const std::vector<uint64_t> seqs = Seqs(page);
    ASSERT_FALSE(seqs.empty());
    ASSERT_EQ(seqs, Range(anchor > 50 ? anchor - 50 : 1, anchor - 1));
    EXPECT_EQ(page.has_more(), seqs.front() > 1);
    EXPECT_GE(page.last_seq(), top);
    older.insert(older.begin(), seqs.begin(), seqs.end());
    anchor = seqs.front();
  }
  EXPECT_EQ(older, Range(1, top - 50));

  // Forward from the newest page while sends land.
  std::vector<uint64_t> newer;
  uint64_t anchor = top;
  uint64_t seen_last = top;
  for (int round = 0; round < 20; ++round) {
    const v1::GetHistoryResponse page =
        Page(alice, group, v1::DIRECTION_AFTER, anchor, 7);
    const std::vector<uint64_t> seqs = Seqs(page);
    EXPECT_GE(page.last_seq(), seen_last);
    seen_last = page.last_seq();
    EXPECT_EQ(page.has_more(),
              (seqs.empty() ? anchor : seqs.back()) < page.last_seq());
    if (seqs.empty()) continue;
    ASSERT_EQ(seqs, Range(anchor + 1, anchor + seqs.size()));
    newer.insert(newer.end(), seqs.begin(), seqs.end());
    anchor = seqs.back();
  }
  stop_sender();
  const uint64_t final_last = 300 + 3 * static_cast<uint64_t>(batches.load());
  // Catch up to the end after the sender stopped.
  while (true) {
    const v1::GetHistoryResponse page =
        Page(alice, group, v1::DIRECTION_AFTER, anchor, 200);
    EXPECT_EQ(page.last_seq(), final_last);
    const std::vector<uint64_t> seqs = Seqs(page);
    if (seqs.empty()) break;
    ASSERT_EQ(seqs, Range(anchor + 1, anchor + seqs.size()));
    newer.insert(newer.end(), seqs.begin(), seqs.end());
    anchor = seqs.back();
  }
  EXPECT_EQ(newer, Range(top + 1, final_last));
}

TEST_P(HistorySuiteTest, EntriesCarryTheirBodies) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t group = MakeGroup(alice, {bob}, At(1));
  Send(group, bob, 1, At(2));
  const v1::GetHistoryResponse page =
      Page(alice, group, v1::DIRECTION_AFTER, 0, 10);
  ASSERT_EQ(page.entries_size(), 2);
  const auto& created = page.entries(0);
  EXPECT_EQ(created.conversation_id(), group);
  EXPECT_EQ(created.sender_id(), alice);
  ASSERT_TRUE(created.has_member_event());
  EXPECT_EQ(created.member_event().kind(),
            message::v1::MemberEvent::KIND_CREATED);
  const auto& sent = page.entries(1);
  EXPECT_EQ(sent.sender_id(), bob);
  ASSERT_TRUE(sent.has_message());
  EXPECT_EQ(sent.message().text(), "text m0");
  EXPECT_EQ(sent.client_msg_id(), "m0");
  EXPECT_EQ(FromProtoTime(sent.sent_at()), At(2));
}

TEST_P(HistorySuiteTest, LimitsAreBounded) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  Send(group, alice, 249, At(2));  // 1..250

  EXPECT_EQ(Seqs(Page(alice, group, v1::DIRECTION_BEFORE, 0, 0)),
            Range(201, 250));  // 0 = the default 50
  EXPECT_EQ(Seqs(Page(alice, group, v1::DIRECTION_BEFORE, 0, 200)),
            Range(51, 250));
  EXPECT_EQ(Seqs(Page(alice, group, v1::DIRECTION_AFTER, 0, 1)), Range(1, 1));

  v1::GetHistoryRequest history;
  history.set_conversation_id(group);
  history.set_limit(201);
  EXPECT_EQ(history_->GetHistory(alice, history).status().code(),
            absl::StatusCode::kInvalidArgument);
  history.set_limit(UINT32_MAX);
  EXPECT_EQ(history_->GetHistory(alice, history).status().code(),
            absl::StatusCode::kInvalidArgument);
  history.set_limit(10);
  history.set_direction(static_cast<v1::Direction>(7));
  EXPECT_EQ(history_->GetHistory(alice, history).status().code(),
            absl::StatusCode::kInvalidArgument);

  v1::GetMessagesRequest none;
  none.set_conversation_id(group);
  EXPECT_EQ(history_->GetMessages(alice, none).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::GetMessagesRequest too_many = none;
  for (uint64_t s = 1; s <= 101; ++s) too_many.add_seqs(s);
  EXPECT_EQ(history_->GetMessages(alice, too_many).status().code(),
            absl::StatusCode::kInvalidArgument);
  too_many.mutable_seqs()->RemoveLast();
  absl::StatusOr<v1::GetMessagesResponse> hundred =
      history_->GetMessages(alice, too_many);
  ASSERT_TRUE(hundred.ok()) << hundred.status();
  EXPECT_EQ(Seqs(*hundred), Range(1, 100));

  v1::ListConversationsRequest list;
  list.set_limit(201);
  EXPECT_EQ(history_->ListConversations(alice, list).status().code(),
            absl::StatusCode::kInvalidArgument);
  list.set_limit(200);
  EXPECT_TRUE(history_->ListConversations(alice, list).ok());

  v1::SyncRequest sync;
  sync.set_limit(501);
  EXPECT_EQ(history_->Sync(alice, sync).status().code(),
            absl::StatusCode::kInvalidArgument);
  sync.set_limit(500);
  EXPECT_TRUE(history_->Sync(alice, sync).ok());
}

// ---- Membership ----------------------------------------------------------

TEST_P(HistorySuiteTest, NonMemberGetsTheSameNotFoundAsAMissingConversation) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t mallory = MakeUser("mallory");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  Send(group, alice, 3, At(2));
  const uint64_t missing = group + 1000;

  for (uint64_t conversation : {group, missing, uint64_t{0}}) {
    SCOPED_TRACE(conversation);
    v1::GetHistoryRequest history;
    history.set_conversation_id(conversation);
    const absl::Status h = history_->GetHistory(mallory, history).status();
    EXPECT_EQ(h.code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(h.message(), "conversation not found");

    v1::GetMessagesRequest messages;
    messages.set_conversation_id(conversation);
    messages.add_seqs(1);
    const absl::Status m = history_->GetMessages(mallory, messages).status();
    EXPECT_EQ(m.code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(m.message(), "conversation not found");
  }
  // The member herself gets the missing one's answer too.
  v1::GetHistoryRequest missing_request;
  missing_request.set_conversation_id(missing);
  const absl::Status own = history_->GetHistory(alice, missing_request).status();
  EXPECT_EQ(own.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(own.message(), "conversation not found");
  // Nothing of the group shows in the outsider's list or sync.
  absl::StatusOr<v1::ListConversationsResponse> list =
      history_->ListConversations(mallory, v1::ListConversationsRequest());
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->conversations_size(), 0);
  v1::SyncRequest sync;
  (*sync.mutable_cursors())[group] = 0;
  absl::StatusOr<v1::SyncResponse> synced = history_->Sync(mallory, sync);
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(synced->changes_size(), 0);
}

TEST_P(HistorySuiteTest, LateJoinerSeesFromTheEntryThatAddedThem) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t carol = MakeUser("carol");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  Send(group, alice, 10, At(2));  // 2..11
  const uint64_t joined = AddMember(group, alice, carol, At(3));
  ASSERT_EQ(joined, 12u);
  Send(group, alice, 5, At(4));  // 13..17

  const v1::GetHistoryResponse newest =
      Page(carol, group, v1::DIRECTION_BEFORE, 0, 50);
  EXPECT_EQ(Seqs(newest), Range(12, 17));
  EXPECT_FALSE(newest.has_more());
  const v1::GetHistoryResponse exact =
      Page(carol, group, v1::DIRECTION_BEFORE, 0, 6);
  EXPECT_EQ(Seqs(exact), Range(12, 17));
  EXPECT_FALSE(exact.has_more());
  const v1::GetHistoryResponse short_page =
      Page(carol, group, v1::DIRECTION_BEFORE, 0, 5);
  EXPECT_EQ(Seqs(short_page), Range(13, 17));
  EXPECT_TRUE(short_page.has_more());
  EXPECT_EQ(Seqs(Page(carol, group, v1::DIRECTION_AFTER, 0, 50)),
            Range(12, 17));
  EXPECT_EQ(Seqs(Page(carol, group, v1::DIRECTION_AFTER, 3, 50)),
            Range(12, 17));
  const v1::GetHistoryResponse before_join =
      Page(carol, group, v1::DIRECTION_BEFORE, 12, 50);
  EXPECT_THAT(Seqs(before_join), IsEmpty());
  EXPECT_FALSE(before_join.has_more());

  v1::GetMessagesRequest request;
  request.set_conversation_id(group);
  for (uint64_t s : {13, 1, 11, 12, 13, 40}) request.add_seqs(s);
  absl::StatusOr<v1::GetMessagesResponse> found =
      history_->GetMessages(carol, request);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(Seqs(*found), ElementsAre(12, 13));
  // Alice sees all of them.
  found = history_->GetMessages(alice, request);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(Seqs(*found), ElementsAre(1, 11, 12, 13));
}

TEST_P(HistorySuiteTest, RemovedMemberSeesUpToTheEntryThatRemovedThem) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t group = MakeGroup(alice, {bob}, At(1));
  Send(group, bob, 9, At(2));  // 2..10
  const uint64_t removed = RemoveMember(group, alice, bob, At(3));
  ASSERT_EQ(removed, 11u);
  Send(group, alice, 20, At(4));  // 12..31

  const v1::GetHistoryResponse newest =
      Page(bob, group, v1::DIRECTION_BEFORE, 0, 5);
  EXPECT_EQ(Seqs(newest), Range(7, 11));
  EXPECT_TRUE(newest.has_more());
  EXPECT_EQ(newest.last_seq(), 11u);  // nothing after the removal leaks
  EXPECT_EQ(Seqs(Page(bob, group, v1::DIRECTION_BEFORE, 25, 5)),
            Range(7, 11));
  const v1::GetHistoryResponse after = Page(bob, group, v1::DIRECTION_AFTER, 8, 50);
  EXPECT_EQ(Seqs(after), Range(9, 11));
  EXPECT_FALSE(after.has_more());
  EXPECT_THAT(Seqs(Page(bob, group, v1::DIRECTION_AFTER, 11, 50)), IsEmpty());
  EXPECT_EQ(Page(alice, group, v1::DIRECTION_BEFORE, 0, 5).last_seq(), 31u);

  v1::GetMessagesRequest request;
  request.set_conversation_id(group);
  for (uint64_t s : {10, 11, 12, 31}) request.add_seqs(s);
  absl::StatusOr<v1::GetMessagesResponse> found =
      history_->GetMessages(bob, request);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(Seqs(*found), ElementsAre(10, 11));

  // Gone from the list.
  absl::StatusOr<v1::ListConversationsResponse> list =
      history_->ListConversations(bob, v1::ListConversationsRequest());
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->conversations_size(), 0);
}

// ---- ListConversations ---------------------------------------------------

std::vector<uint64_t> Ids(const v1::ListConversationsResponse& list) {
  std::vector<uint64_t> ids;
  for (const auto& summary : list.conversations()) {
    ids.push_back(summary.conversation().conversation_id());
  }
  return ids;
}

TEST_P(HistorySuiteTest, ConversationListIsNewestFirstWithUnreadCounts) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t carol = MakeUser("carol");
  const uint64_t g1 = MakeGroup(alice, {bob, carol}, At(1));
  const uint64_t g2 = MakeGroup(bob, {alice}, At(2));
  const uint64_t direct = MakeDirect(alice, bob, At(3));
  const uint64_t g3 = MakeGroup(carol, {alice}, At(4));
  const uint64_t other = MakeGroup(bob, {carol}, At(5));  // not alice's
  Send(g1, alice, 2, At(10));  // 2..3, alice's own: read
  Send(g1, bob, 3, At(11));    // 4..6 unread for alice
  Send(direct, bob, 4, At(12));
  Send(g2, alice, 1, At(8));
  Send(other, bob, 1, At(20));

  absl::StatusOr<v1::ListConversationsResponse> list =
      history_->ListConversations(alice, v1::ListConversationsRequest());
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(Ids(*list), ElementsAre(direct, g1, g2, g3));
  EXPECT_TRUE(list->next_page_token().empty());

  const v1::ConversationSummary& d = list->conversations(0);
  EXPECT_EQ(d.conversation().kind(), CONVERSATION_KIND_DIRECT);
  EXPECT_EQ(d.conversation().peer_user_id(), bob);
  EXPECT_EQ(d.conversation().member_count(), 2u);
  EXPECT_EQ(d.conversation().last_seq(), 5u);
  EXPECT_EQ(FromProtoTime(d.conversation().last_activity_at()),
            At(12));
  EXPECT_EQ(d.last_entry().seq(), 5u);
  EXPECT_EQ(d.last_entry().sender_id(), bob);
  EXPECT_EQ(d.last_entry().message().text(), "text m8");
  EXPECT_EQ(d.unread_count(), 4u);  // the creation entry is alice's own

  const v1::ConversationSummary& s1 = list->conversations(1);
  EXPECT_EQ(s1.conversation().title(), "group");
  EXPECT_EQ(s1.conversation().member_count(), 3u);
  EXPECT_EQ(s1.conversation().peer_user_id(), 0u);
  EXPECT_EQ(s1.my_role(), MEMBER_ROLE_OWNER);
  EXPECT_EQ(s1.read_seq(), 3u);
  EXPECT_EQ(s1.unread_count(), 3u);
  EXPECT_EQ(s1.last_entry().seq(), 6u);

  const v1::ConversationSummary& s2 = list->conversations(2);
  EXPECT_EQ(s2.my_role(), MEMBER_ROLE_MEMBER);
  EXPECT_EQ(s2.read_seq(), 2u);
  EXPECT_EQ(s2.unread_count(), 0u);

  const v1::ConversationSummary& s3 = list->conversations(3);
  EXPECT_EQ(s3.read_seq(), 0u);
  EXPECT_EQ(s3.unread_count(), 1u);  // carol's creation entry
  ASSERT_TRUE(s3.last_entry().has_member_event());

  // Reading moves the count.
  absl::StatusOr<uint64_t> marked =
      db_->read_markers()->MarkRead(alice, g1, 5, At(30));
  ASSERT_TRUE(marked.ok()) << marked.status();
  list = history_->ListConversations(alice, v1::ListConversationsRequest());
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->conversations(1).read_seq(), 5u);
  EXPECT_EQ(list->conversations(1).unread_count(), 1u);
}

TEST_P(HistorySuiteTest, ConversationListPagesNeverRepeatARow) {
  const uint64_t alice = MakeUser("alice");
  std::vector<uint64_t> groups;
  for (int i = 0; i < 7; ++i) groups.push_back(MakeGroup(alice, {}, At(1 + i)));
  // Two share an activity time: ties go to the higher id first.
  Send(groups[2], alice, 1, At(100));
  Send(groups[5], alice, 1, At(100));

  v1::ListConversationsRequest request;
  request.set_limit(3);
  absl::StatusOr<v1::ListConversationsResponse> page1 =
      history_->ListConversations(alice, request);
  ASSERT_TRUE(page1.ok()) << page1.status();
  EXPECT_THAT(Ids(*page1), ElementsAre(groups[5], groups[2], groups[6]));
  ASSERT_FALSE(page1->next_page_token().empty());

  // groups[0] becomes active while paging: it moves above what was read
  // and does not show up again further down.
  Send(groups[0], alice, 1, At(200));
  request.set_page_token(page1->next_page_token());
  absl::StatusOr<v1::ListConversationsResponse> page2 =
      history_->ListConversations(alice, request);
  ASSERT_TRUE(page2.ok()) << page2.status();
  EXPECT_THAT(Ids(*page2), ElementsAre(groups[4], groups[3], groups[1]));
  EXPECT_TRUE(page2->next_page_token().empty());

  // An exact fit ends without a token.
  request.clear_page_token();
  request.set_limit(7);
  absl::StatusOr<v1::ListConversationsResponse> all =
      history_->ListConversations(alice, request);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->conversations_size(), 7);
  EXPECT_TRUE(all->next_page_token().empty());
}

TEST_P(HistorySuiteTest, MalformedPageTokensAreInvalidArgument) {
  const uint64_t alice = MakeUser("alice");
  MakeGroup(alice, {}, At(1));
  MakeGroup(alice, {}, At(2));
  v1::ListConversationsRequest list;
  list.set_limit(1);
  absl::StatusOr<v1::ListConversationsResponse> page =
      history_->ListConversations(alice, list);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_FALSE(page->next_page_token().empty());
  const std::string good = page->next_page_token();

  for (const std::string& bad :
       {std::string("garbage"), std::string("%%%"), good + "A", good + "=",
        good.substr(1), std::string(1000, 'A')}) {
    SCOPED_TRACE(bad);
    list.set_page_token(bad);
    EXPECT_EQ(history_->ListConversations(alice, list).status().code(),
              absl::StatusCode::kInvalidArgument);
    v1::SyncRequest sync;
    sync.set_page_token(bad);
    EXPECT_EQ(history_->Sync(alice, sync).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  // One RPC's token is not the other's.
  v1::SyncRequest sync;
  sync.set_page_token(good);
  EXPECT_EQ(history_->Sync(alice, sync).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Sync ----------------------------------------------------------------

TEST_P(HistorySuiteTest, SyncReportsWhatChangedBeyondTheCursors) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t current = MakeGroup(bob, {alice}, At(1));
  const uint64_t behind = MakeGroup(bob, {alice}, At(2));
  const uint64_t unlisted = MakeGroup(bob, {}, At(3));
  const uint64_t removed_listed = MakeGroup(bob, {alice}, At(4));
  const uint64_t removed_unlisted = MakeGroup(bob, {alice}, At(5));
  const uint64_t foreign = MakeGroup(bob, {}, At(6));
  Send(current, bob, 4, At(10));  // 1..5
  Send(behind, bob, 9, At(11));   // 1..10
  Send(unlisted, bob, 6, At(12));  // 1..7
  const uint64_t added = AddMember(unlisted, bob, alice, At(13));  // 8
  Send(unlisted, bob, 2, At(14));  // 9..10
  Send(removed_listed, bob, 2, At(15));  // 2..3
  ASSERT_EQ(RemoveMember(removed_listed, bob, alice, At(16)), 4u);
  Send(removed_listed, bob, 3, At(17));  // 5..7, invisible to alice
  ASSERT_EQ(RemoveMember(removed_unlisted, bob, alice, At(18)), 2u);

  v1::SyncRequest request;
  auto& cursors = *request.mutable_cursors();
  cursors[current] = 5;
  cursors[behind] = 7;
  cursors[removed_listed] = 2;
  cursors[foreign] = 0;        // never a member: ignored
  cursors[foreign + 100] = 3;  // does not exist: ignored
  absl::StatusOr<v1::SyncResponse> sync = history_->Sync(alice, request);
  ASSERT_TRUE(sync.ok()) << sync.status();
  EXPECT_TRUE(sync->next_page_token().empty());
  ASSERT_EQ(sync->changes_size(), 3);

  const v1::ConversationChange& b = sync->changes(0);
  EXPECT_EQ(b.conversation().conversation_id(), behind);
  EXPECT_EQ(b.cursor(), 7u);
  EXPECT_EQ(b.last_seq(), 10u);
  EXPECT_EQ(b.new_entries(), 3u);
  EXPECT_EQ(b.read_seq(), 0u);
  EXPECT_EQ(b.unread_count(), 10u);
  EXPECT_FALSE(b.removed());
  EXPECT_EQ(b.conversation().member_count(), 2u);

  const v1::ConversationChange& u = sync->changes(1);
  EXPECT_EQ(u.conversation().conversation_id(), unlisted);
  EXPECT_EQ(u.cursor(), 0u);
  EXPECT_EQ(u.last_seq(), 10u);
  EXPECT_EQ(u.new_entries(), 3u);  // 8..10: before joining is not new
  EXPECT_EQ(u.read_seq(), added - 1);
  EXPECT_EQ(u.unread_count(), 3u);
  EXPECT_FALSE(u.removed());

  const v1::ConversationChange& r = sync->changes(2);
  EXPECT_EQ(r.conversation().conversation_id(), removed_listed);
  EXPECT_TRUE(r.removed());
  EXPECT_EQ(r.cursor(), 2u);
  EXPECT_EQ(r.last_seq(), 4u);
  EXPECT_EQ(r.new_entries(), 2u);
  EXPECT_EQ(r.conversation().last_seq(), 4u);
  EXPECT_EQ(FromProtoTime(r.conversation().last_activity_at()),
            At(16));
  EXPECT_EQ(r.unread_count(), 4u);

  // A client fully caught up sees only the removal it has not dropped yet.
  cursors[behind] = 10;
  cursors[unlisted] = 10;
  sync = history_->Sync(alice, request);
  ASSERT_TRUE(sync.ok()) << sync.status();
  ASSERT_EQ(sync->changes_size(), 1);
  EXPECT_EQ(sync->changes(0).conversation().conversation_id(), removed_listed);
  EXPECT_EQ(sync->changes(0).new_entries(), 2u);
  cursors.erase(removed_listed);
  sync = history_->Sync(alice, request);
  ASSERT_TRUE(sync.ok()) << sync.status();
  EXPECT_EQ(sync->changes_size(), 0);
}

TEST_P(HistorySuiteTest, SyncPagesAreBoundedAndCoverEveryChangeOnce) {
  ConversationHistoryOptions options;
  options.max_sync_rows_scanned = 4;
  UseOptions(options);
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  std::vector<uint64_t> groups;
  for (int i = 0; i < 11; ++i) groups.push_back(MakeGroup(bob, {alice}, At(i)));
  v1::SyncRequest request;
  // Groups 0-4 and 8 are up to date; 5, 6, 7, 9 and 10 changed.
  std::vector<uint64_t> expected;
  for (size_t i = 0; i < groups.size(); ++i) {
    if (i < 5 || i == 8) {
      (*request.mutable_cursors())[groups[i]] = 1;
    } else {
      expected.push_back(groups[i]);
    }
  }
  request.set_limit(2);

  std::vector<uint64_t> seen;
  std::vector<int> page_sizes;
  for (int pages = 0; pages < 20; ++pages) {
    absl::StatusOr<v1::SyncResponse> page = history_->Sync(alice, request);
    ASSERT_TRUE(page.ok()) << page.status();
    page_sizes.push_back(page->changes_size());
    for (const auto& change : page->changes()) {
      seen.push_back(change.conversation().conversation_id());
      EXPECT_EQ(change.new_entries(), 1u);
    }
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(seen, expected);
  // Rows 0-3: the scan bound ends an empty page; rows 4-6 and 7-9: the
  // limit ends the page; row 10: the last page.
  EXPECT_THAT(page_sizes, ElementsAre(0, 2, 2, 1));

  // One page when the bound and the limit allow it.
  UseOptions(ConversationHistoryOptions{});
  request.clear_page_token();
  request.set_limit(0);
  absl::StatusOr<v1::SyncResponse> all = history_->Sync(alice, request);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->changes_size(), static_cast<int>(expected.size()));
  EXPECT_TRUE(all->next_page_token().empty());
}

}  // namespace
}  // namespace im::history::testing
