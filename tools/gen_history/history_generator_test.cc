#include "tools/gen_history/history_generator.h"

#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/fake/fake_database.h"

namespace im::tools {
namespace {

HistoryGeneratorOptions SmallOptions() {
  HistoryGeneratorOptions options;
  options.users = 40;
  options.conversations = 25;
  options.messages = 1003;
  options.heavy_user_conversations = 12;
  options.big_conversations = 2;
  options.big_share = 0.5;
  options.batch_size = 7;
  options.threads = 3;
  options.text_bytes = 20;
  return options;
}

TEST(HistoryGeneratorTest, GeneratesExactlyThePlannedLog) {
  storage::FakeDatabase db;
  const HistoryGeneratorOptions options = SmallOptions();
  absl::StatusOr<HistoryGeneratorResult> result = GenerateHistory(options, &db);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->users, 40u);
  EXPECT_EQ(result->conversations, 25u);
  EXPECT_EQ(result->messages, 1003u);

  // Every conversation's log is gap-free from 1 and holds its creation
  // entry plus its messages; together, every generated message.
  uint64_t messages = 0;
  uint64_t conversations = 0;
  uint64_t deepest = 0;
  for (uint64_t id = 1; id <= 25; ++id) {
    absl::StatusOr<storage::ConversationRecord> c =
        db.reader()->GetConversation(id);
    ASSERT_TRUE(c.ok()) << c.status();
    absl::StatusOr<std::vector<storage::Entry>> entries =
        db.reader()->ReadAfter(id, 0, UINT64_MAX, 100000);
    ASSERT_TRUE(entries.ok()) << entries.status();
    ASSERT_EQ(entries->size(), c->last_seq);
    for (size_t i = 0; i < entries->size(); ++i) {
      ASSERT_EQ((*entries)[i].seq(), i + 1);
      if ((*entries)[i].has_message()) {
        ++messages;
        EXPECT_EQ((*entries)[i].message().text().size(), 20u);
      }
    }
    ++conversations;
    deepest = std::max(deepest, c->last_seq);
  }
  EXPECT_EQ(conversations, 25u);
  EXPECT_EQ(messages, 1003u);
  // The two big ones share half the messages.
  EXPECT_EQ(deepest, 250u + 1u);
  EXPECT_EQ(result->deepest_last_seq, 251u);
  absl::StatusOr<storage::ConversationRecord> deepest_record =
      db.reader()->GetConversation(result->deepest_conversation_id);
  ASSERT_TRUE(deepest_record.ok());
  EXPECT_EQ(deepest_record->last_seq, 251u);

  // The heavy user is in exactly heavy_user_conversations of them.
  absl::StatusOr<storage::UserRecord> heavy =
      db.users()->GetUserByUsername(kHeavyUsername);
  ASSERT_TRUE(heavy.ok()) << heavy.status();
  EXPECT_EQ(heavy->id, result->heavy_user_id);
  absl::StatusOr<std::vector<storage::MembershipView>> memberships =
      db.reader()->ListMemberships(heavy->id, 0, 1000, true);
  ASSERT_TRUE(memberships.ok()) << memberships.status();
  EXPECT_EQ(memberships->size(), 12u);
  std::set<uint64_t> ids;
  for (const storage::MembershipView& view : *memberships) {
    EXPECT_LE(view.read_seq, view.conversation.last_seq);
    ids.insert(view.conversation.id);
  }
  EXPECT_TRUE(ids.count(result->deepest_conversation_id) > 0);
}

TEST(HistoryGeneratorTest, RefusesAGeneratedDatabaseAndBadOptions) {
  storage::FakeDatabase db;
  ASSERT_TRUE(GenerateHistory(SmallOptions(), &db).ok());
  EXPECT_EQ(GenerateHistory(SmallOptions(), &db).status().code(),
            absl::StatusCode::kFailedPrecondition);

  storage::FakeDatabase empty;
  HistoryGeneratorOptions bad = SmallOptions();
  bad.heavy_user_conversations = 30;  // more than conversations
  EXPECT_EQ(GenerateHistory(bad, &empty).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = SmallOptions();
  bad.batch_size = 0;
  EXPECT_EQ(GenerateHistory(bad, &empty).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = SmallOptions();
  bad.big_share = 1.0;
  EXPECT_EQ(GenerateHistory(bad, &empty).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace im::tools
