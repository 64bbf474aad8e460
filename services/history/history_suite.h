#ifndef IM_SERVICES_HISTORY_HISTORY_SUITE_H_
#define IM_SERVICES_HISTORY_HISTORY_SUITE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "im/history/v1/history.grpc.pb.h"
#include "im/history/v1/history.pb.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/history/conversation_history.h"
#include "services/history/fake_message_service.h"
#include "services/history/history_service.h"
#include "services/message/testing/message_test_env.h"
#include "storage/database.h"

// The history rules as test suites, run on the in-memory fake
// (history_test) and on MariaDB (history_mysql_test), so both stores are
// held to the same exact seqs, pages and codes. HistorySuiteTest calls
// ConversationHistory directly; HistoryServiceSuiteTest goes through gRPC
// on loopback (authentication, MarkRead forwarded to a fake message
// service, status codes at the edge); HistoryWithMessageServiceTest runs
// the real message service beside it:
//
//   INSTANTIATE_HISTORY_SUITES(Fake, HistoryBackend{...});

namespace im::history::testing {

struct HistoryBackend {
  std::string name;
  // A fresh, empty database; null after reporting a failure.
  std::function<std::unique_ptr<storage::Database>()> make;
};

inline std::ostream& operator<<(std::ostream& os, const HistoryBackend& b) {
  return os << b.name;
}

class HistorySuiteTest : public ::testing::TestWithParam<HistoryBackend> {
 protected:
  void SetUp() override;

  // Replaces history_ with one using `options` (same database).
  void UseOptions(const ConversationHistoryOptions& options);

  // A fixed point in time plus `seconds`.
  static absl::Time At(double seconds);

  // Each fails the test and returns 0 (or empty) on error.
  uint64_t MakeUser(const std::string& name);
  uint64_t MakeGroup(uint64_t owner, std::vector<uint64_t> members,
                     absl::Time now);
  uint64_t MakeDirect(uint64_t a, uint64_t b, absl::Time now);
  // Appends `count` messages from `sender` in one batch; their seqs.
  std::vector<uint64_t> Send(uint64_t conversation_id, uint64_t sender,
                             int count, absl::Time now);
  uint64_t AddMember(uint64_t conversation_id, uint64_t actor, uint64_t user,
                     absl::Time now);
  uint64_t RemoveMember(uint64_t conversation_id, uint64_t actor,
                        uint64_t user, absl::Time now);

  // One GetHistory page (fails the test on error).
  v1::GetHistoryResponse Page(uint64_t user, uint64_t conversation_id,
                              v1::Direction direction, uint64_t anchor,
                              uint32_t limit);

  static std::vector<uint64_t> Seqs(const v1::GetHistoryResponse& page);
  static std::vector<uint64_t> Seqs(const v1::GetMessagesResponse& found);
  // first, first + 1, ..., last.
  static std::vector<uint64_t> Range(uint64_t first, uint64_t last);

  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<ConversationHistory> history_;
  int next_client_msg_id_ = 0;
};

// A client context with a deadline, carrying `token` (none when empty).
std::unique_ptr<grpc::ClientContext> Context(const std::string& token);

// HistorySuiteTest's data helpers plus a history server and a fake message
// server on loopback ports.
class HistoryServiceSuiteTest : public HistorySuiteTest {
 protected:
  void SetUp() override;
  void TearDown() override;

  // An access token of `user` for device session `session`.
  std::string Token(uint64_t user, uint64_t session);

  std::unique_ptr<TokenCodec> codec_;
  RevocationSet revocations_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<FakeMessageService> message_service_;
  std::unique_ptr<GrpcServer> message_server_;
  std::unique_ptr<HistoryServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::HistoryService::Stub> stub_;
};

// A history server next to the real message service (in-process, same
// database and token key), for what spans both.
class HistoryWithMessageServiceTest
    : public ::testing::TestWithParam<HistoryBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The unread count of the caller's only conversation, via history.
  uint64_t Unread(const std::string& token);

  std::unique_ptr<message::testing::MessageTestEnv> env_;
  std::unique_ptr<HistoryServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::HistoryService::Stub> stub_;
};

}  // namespace im::history::testing

#define INSTANTIATE_HISTORY_SUITES(prefix, backend)                  \
  INSTANTIATE_TEST_SUITE_P(prefix, HistorySuiteTest,                  \
                           ::testing::Values(backend));               \
  INSTANTIATE_TEST_SUITE_P(prefix, HistoryServiceSuiteTest,           \
                           ::testing::Values(backend));               \
  INSTANTIATE_TEST_SUITE_P(prefix, HistoryWithMessageServiceTest,     \
                           ::testing::Values(backend))

#endif  // IM_SERVICES_HISTORY_HISTORY_SUITE_H_
