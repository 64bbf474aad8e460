#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/testing/store_contract.h"

namespace im::storage::testing {
namespace {

using ::testing::ElementsAre;

AppendRequest Msg(uint64_t conversation_id, uint64_t sender,
                  const std::string& client_msg_id, const std::string& text) {
  AppendRequest r;
  r.conversation_id = conversation_id;
  r.sender_id = sender;
  r.client_msg_id = client_msg_id;
  r.message.set_text(text);
  return r;
}

TEST_P(ConversationLogContractTest, SeqsAreConsecutivePerConversation) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t g1 = MakeGroup(alice, {bob});
  const uint64_t g2 = MakeGroup(bob, {alice});

  AppendRequest rich = Msg(g1, alice, "m-1", "hello \xe2\x9c\x93");
  rich.message.set_content_type("application/json");
  (*rich.message.mutable_metadata())["k"] = "v \xc3\xa9";
  (*rich.message.mutable_metadata())["empty"] = "";
  const std::vector<AppendRequest> batch = {
      rich, Msg(g2, bob, "m-2", "b1"), Msg(g1, bob, "m-3", "a2"),
      Msg(g1, alice, "m-4", ""), Msg(g2, alice, "m-5", "b2")};
  absl::StatusOr<std::vector<AppendOutcome>> out =
      log().AppendMessages(batch, At(10));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 5u);
  const std::vector<std::pair<uint64_t, uint64_t>> expected = {
      {g1, 2}, {g2, 2}, {g1, 3}, {g1, 4}, {g2, 3}};  // seq 1: KIND_CREATED
  for (size_t i = 0; i < out->size(); ++i) {
    const AppendOutcome& o = (*out)[i];
    ASSERT_TRUE(o.status.ok()) << i << ": " << o.status;
    EXPECT_FALSE(o.duplicate);
    EXPECT_EQ(o.entry.conversation_id(), expected[i].first);
    EXPECT_EQ(o.entry.seq(), expected[i].second);
    EXPECT_EQ(o.entry.sender_id(), batch[i].sender_id);
    EXPECT_EQ(o.entry.client_msg_id(), batch[i].client_msg_id);
    EXPECT_EQ(o.entry.message().text(), batch[i].message.text());
    EXPECT_EQ(absl::FromUnixSeconds(o.entry.sent_at().seconds()) +
                  absl::Nanoseconds(o.entry.sent_at().nanos()),
              Stored(At(10)));
  }

  std::vector<Entry> log1 = ReadAll(g1);
  EXPECT_EQ(Seqs(log1), (std::vector<uint64_t>{1, 2, 3, 4}));
  ASSERT_EQ(log1.size(), 4u);
  EXPECT_TRUE(SameEntry(log1[1], (*out)[0].entry));
  EXPECT_EQ(log1[1].message().content_type(), "application/json");
  EXPECT_EQ(log1[1].message().metadata().at("k"), "v \xc3\xa9");
  EXPECT_EQ(log1[1].message().metadata().at("empty"), "");
  EXPECT_EQ(log1[3].message().text(), "");
  EXPECT_EQ(Seqs(ReadAll(g2)), (std::vector<uint64_t>{1, 2, 3}));

  absl::StatusOr<ConversationRecord> c = reader().GetConversation(g1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->last_seq, 4u);
  EXPECT_EQ(c->last_activity_at, Stored(At(10)));
}

TEST_P(ConversationLogContractTest, RetryReturnsTheOriginalAndStoresNothing) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t g = MakeGroup(alice, {bob});
  ASSERT_EQ(Send(g, alice, "same", "first", At(5)), 2u);
  ASSERT_EQ(Send(g, bob, "other", "x", At(6)), 3u);

  absl::StatusOr<std::vector<AppendOutcome>> retry = log().AppendMessages(
      {Msg(g, alice, "same", "second"), Msg(g, bob, "same", "bob's own")},
      At(9));
  ASSERT_TRUE(retry.ok()) << retry.status();
  const AppendOutcome& dup = (*retry)[0];
  ASSERT_TRUE(dup.status.ok());
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.entry.seq(), 2u);
  EXPECT_EQ(dup.entry.message().text(), "first");
  EXPECT_EQ(dup.entry.sent_at().seconds(), absl::ToUnixSeconds(At(5)));
  EXPECT_EQ(dup.entry.sent_at().nanos(),
            (absl::ToUnixMicros(At(5)) % 1000000) * 1000);
  // The same client_msg_id from another sender is another message.
  const AppendOutcome& bobs = (*retry)[1];
  ASSERT_TRUE(bobs.status.ok());
  EXPECT_FALSE(bobs.duplicate);
  EXPECT_EQ(bobs.entry.seq(), 4u);

  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(reader().GetConversation(g)->last_seq, 4u);
}

TEST_P(ConversationLogContractTest, DuplicatesWithinOneBatch) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t g = MakeGroup(alice, {});
  const uint64_t h = MakeGroup(alice, {});
  absl::StatusOr<std::vector<AppendOutcome>> out = log().AppendMessages(
      {Msg(g, alice, "a", "one"), Msg(g, alice, "b", "two"),
       Msg(g, alice, "a", "one again"), Msg(h, alice, "a", "other conv"),
       Msg(g, alice, "b", "two again")},
      At(1));
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<std::tuple<uint64_t, bool, std::string>> got;
  for (const AppendOutcome& o : *out) {
    ASSERT_TRUE(o.status.ok()) << o.status;
    got.emplace_back(o.entry.seq(), o.duplicate, o.entry.message().text());
  }
  auto row = [](uint64_t seq, bool duplicate, const char* text) {
    return std::make_tuple(seq, duplicate, std::string(text));
  };
  EXPECT_THAT(got, ElementsAre(row(2, false, "one"), row(3, false, "two"),
                               row(2, true, "one"), row(2, false, "other conv"),
                               row(3, true, "two")));
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(Seqs(ReadAll(h)), (std::vector<uint64_t>{1, 2}));
}

TEST_P(ConversationLogContractTest, BadRequestsFailAloneAndStoreNothing) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t carol = MakeUser("carol");
  const uint64_t g = MakeGroup(alice, {bob});
  ASSERT_TRUE(log().RemoveMember(g, alice, bob, "", At(1)).ok());  // seq 2

  AppendRequest bad_utf8 = Msg(g, alice, "u", "bad \xc0\xaf");
  AppendRequest bad_type = Msg(g, alice, "t", "x");
  bad_type.message.set_content_type("text/\xc3\xa9");
  AppendRequest bad_meta = Msg(g, alice, "m", "x");
  (*bad_meta.message.mutable_metadata())["k"] = "\xff";
  const std::vector<AppendRequest> batch = {
      Msg(g, alice, "ok-1", "1"),
      Msg(g, carol, "c", "never a member"),
      Msg(999999, alice, "x", "unknown conversation"),
      Msg(g, bob, "b", "removed member"),
      Msg(g, alice, "", "empty id"),
      Msg(g, alice, "has space", "bad id"),
      Msg(g, alice, std::string(65, 'i'), "long id"),
      bad_utf8,
      bad_type,
      bad_meta,
      Msg(g, alice, "ok-2", "2"),
  };
  absl::StatusOr<std::vector<AppendOutcome>> out =
      log().AppendMessages(batch, At(2));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), batch.size());
  std::vector<absl::StatusCode> codes;
  for (const AppendOutcome& o : *out) codes.push_back(o.status.code());
  EXPECT_THAT(codes, ElementsAre(absl::StatusCode::kOk,
                                 absl::StatusCode::kNotFound,
                                 absl::StatusCode::kNotFound,
                                 absl::StatusCode::kNotFound,
                                 absl::StatusCode::kInvalidArgument,
                                 absl::StatusCode::kInvalidArgument,
                                 absl::StatusCode::kInvalidArgument,
                                 absl::StatusCode::kInvalidArgument,
                                 absl::StatusCode::kInvalidArgument,
                                 absl::StatusCode::kInvalidArgument,
                                 absl::StatusCode::kOk));
  // Non-members cannot tell a foreign conversation from a missing one.
  EXPECT_EQ((*out)[1].status.message(), (*out)[2].status.message());
  EXPECT_EQ((*out)[1].status.message(), "conversation not found");
  EXPECT_EQ((*out)[0].entry.seq(), 3u);
  EXPECT_EQ((*out)[10].entry.seq(), 4u);
  EXPECT_EQ(Seqs(ReadAll(g)), (std::vector<uint64_t>{1, 2, 3, 4}));

  absl::StatusOr<std::vector<AppendOutcome>> empty =
      log().AppendMessages({}, At(3));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_P(ConversationLogContractTest, SendingMarksOwnEntriesRead) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t g = MakeGroup(alice, {bob});
  EXPECT_EQ(*read_markers().GetReadSeq(alice, g), 1u);  // her KIND_CREATED
  EXPECT_EQ(*read_markers().GetReadSeq(bob, g), 0u);
  absl::StatusOr<std::vector<AppendOutcome>> out = log().AppendMessages(
      {Msg(g, bob, "1", "x"), Msg(g, alice, "2", "y"), Msg(g, bob, "3", "z")},
      At(1));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*read_markers().GetReadSeq(bob, g), 4u);
  EXPECT_EQ(*read_markers().GetReadSeq(alice, g), 3u);
  // A duplicate does not move the marker back.
  ASSERT_TRUE(log().AppendMessages({Msg(g, bob, "1", "x")}, At(2)).ok());
  EXPECT_EQ(*read_markers().GetReadSeq(bob, g), 4u);
}

TEST_P(ConversationLogContractTest, LargeBatchesAcrossConversations) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  std::vector<uint64_t> groups;
  for (int i = 0; i < 3; ++i) groups.push_back(MakeGroup(alice, {bob}));
  std::vector<AppendRequest> batch;
  for (int i = 0; i < 301; ++i) {
    batch.push_back(Msg(groups[i % 3], i % 2 ? alice : bob,
                        absl::StrCat("id-", i % 290), absl::StrCat("text ", i)));
  }
  absl::StatusOr<std::vector<AppendOutcome>> out =
      log().AppendMessages(batch, At(1));
  ASSERT_TRUE(out.ok()) << out.status();
  size_t stored = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    ASSERT_TRUE((*out)[i].status.ok());
    if (!(*out)[i].duplicate) ++stored;
  }
  // Ids repeat after 290 messages; repeats are duplicates only when the
  // conversation and sender match too.
  size_t expected_stored = 0;
  std::set<std::tuple<uint64_t, uint64_t, std::string>> seen;
  for (const AppendRequest& r : batch) {
    if (seen.insert({r.conversation_id, r.sender_id, r.client_msg_id}).second) {
      ++expected_stored;
    }
  }
  EXPECT_EQ(stored, expected_stored);
  size_t total = 0;
  for (uint64_t g : groups) {
    std::vector<Entry> entries = ReadAll(g);
    for (size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(entries[i].seq(), i + 1);
    }
    total += entries.size() - 1;
  }
  EXPECT_EQ(total, expected_stored);
}

// Several writers append to the same conversations at once: every seq from
// 1 to N exists exactly once and every message is stored exactly once.
TEST_P(ConversationLogContractTest, ConcurrentAppendsStayGapFree) {
  constexpr int kThreads = 6;
  constexpr int kBatches = 25;
  constexpr int kPerBatch = 4;
  std::vector<uint64_t> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.push_back(MakeUser(absl::StrCat("sender", t)));
  }
  const uint64_t g1 = MakeGroup(senders[0], senders);
  const uint64_t g2 = MakeGroup(senders[1], senders);
  ASSERT_FALSE(HasFailure());

  absl::Mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<AppendRequest> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          // Alternate the conversation order so lock order matters.
          const uint64_t g = ((t + i) % 2 == 0) ? g1 : g2;
          batch.push_back(Msg(g, senders[t], absl::StrCat("t", t, "b", b, "i", i),
                              "x"));
        }
        absl::StatusOr<std::vector<AppendOutcome>> out =
            log().AppendMessages(batch, At(b));
        absl::MutexLock lock(&mu);
        if (!out.ok()) {
          errors.push_back(out.status().ToString());
          continue;
        }
        for (const AppendOutcome& o : *out) {
          if (!o.status.ok() || o.duplicate) errors.push_back(o.status.ToString());
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_TRUE(errors.empty()) << errors.size() << " failures, first: "
                              << errors.front();

  const size_t per_conversation = kThreads * kBatches * kPerBatch / 2;
  for (uint64_t g : {g1, g2}) {
    std::vector<Entry> entries = ReadAll(g);
    ASSERT_EQ(entries.size(), per_conversation + 1);
    std::set<std::pair<uint64_t, std::string>> keys;
    for (size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(entries[i].seq(), i + 1);
      keys.insert({entries[i].sender_id(), entries[i].client_msg_id()});
    }
    EXPECT_EQ(keys.size(), entries.size());
    EXPECT_EQ(reader().GetConversation(g)->last_seq, per_conversation + 1);
  }
}

}  // namespace
}  // namespace im::storage::testing
