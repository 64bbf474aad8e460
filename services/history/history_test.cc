#include <memory>

#include "gtest/gtest.h"
#include "services/history/history_suite.h"
#include "storage/fake/fake_database.h"

namespace im::history::testing {
namespace {

HistoryBackend FakeBackend() {
  return HistoryBackend{"fake", [] {
                          return std::make_unique<storage::FakeDatabase>();
                        }};
}

INSTANTIATE_HISTORY_SUITES(Fake, FakeBackend());

// Store failures reach the caller with their code (the fake can inject
// them; MariaDB cannot on demand).
class HistoryStoreFailureTest : public HistorySuiteTest {
 protected:
  storage::FakeDatabase& fake() {
    return static_cast<storage::FakeDatabase&>(*db_);
  }
};

TEST_P(HistoryStoreFailureTest, StoreOutagesAreUnavailable) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  v1::GetHistoryRequest history;
  history.set_conversation_id(group);
  v1::GetMessagesRequest messages;
  messages.set_conversation_id(group);
  messages.add_seqs(1);
  v1::SyncRequest sync;

  fake().InjectFailure(absl::UnavailableError("database down"), -1);
  EXPECT_EQ(history_->GetHistory(alice, history).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(history_->GetMessages(alice, messages).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(history_->ListConversations(alice, {}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(history_->Sync(alice, sync).status().code(),
            absl::StatusCode::kUnavailable);
  // A deadlock is retryable too and keeps its code.
  fake().InjectFailure(absl::AbortedError("deadlock"), 1);
  EXPECT_EQ(history_->GetHistory(alice, history).status().code(),
            absl::StatusCode::kAborted);
  fake().ClearFailure();
  EXPECT_TRUE(history_->GetHistory(alice, history).ok());
  EXPECT_TRUE(history_->GetMessages(alice, messages).ok());
}

INSTANTIATE_TEST_SUITE_P(Fake, HistoryStoreFailureTest,
                         ::testing::Values(FakeBackend()));

}  // namespace
}  // namespace im::history::testing
