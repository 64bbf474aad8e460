#ifndef IM_STORAGE_TESTING_STORE_CONTRACT_H_
#define IM_STORAGE_TESTING_STORE_CONTRACT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "storage/database.h"

// Contract suites for every store interface, written once and run against
// each implementation: a test binary instantiates them with a factory that
// makes a fresh, empty Database per test.
//
//   INSTANTIATE_STORE_CONTRACT_TESTS(Fake, StoreFactory{"fake", [] {
//     return std::make_unique<FakeDatabase>();
//   }});

namespace im::storage::testing {

struct StoreFactory {
  std::string name;
  // A fresh, empty database; null after reporting a test failure (e.g. the
  // MySQL test server is not configured).
  std::function<std::unique_ptr<Database>()> make;
};

inline std::ostream& operator<<(std::ostream& os, const StoreFactory& f) {
  return os << f.name;
}

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 public:
  // A fixed point in time plus `seconds`, with sub-microsecond noise that
  // every store must drop (times are stored in whole microseconds).
  static absl::Time At(double seconds);
  // `t` as stored.
  static absl::Time Stored(absl::Time t);

 protected:
  void SetUp() override;

  UserStore& users() { return *db_->users(); }
  SessionStore& sessions() { return *db_->sessions(); }
  ConversationLog& log() { return *db_->log(); }
  ConversationReader& reader() { return *db_->reader(); }
  ReadMarkerStore& read_markers() { return *db_->read_markers(); }

  // Creates a person named `name` (norm: lower-cased); fails the test and
  // returns 0 on error.
  uint64_t MakeUser(const std::string& name);
  // Creates a group owned by `owner` with `members`; 0 on error.
  uint64_t MakeGroup(uint64_t owner, std::vector<uint64_t> members,
                    absl::Time now = At(0));
  // Appends one message and returns its seq; 0 on error.
  uint64_t Send(uint64_t conversation_id, uint64_t sender,
                const std::string& client_msg_id, const std::string& text,
                absl::Time now = At(0));
  // All entries of a conversation, ascending.
  std::vector<Entry> ReadAll(uint64_t conversation_id);
  std::vector<uint64_t> Seqs(const std::vector<Entry>& entries);
  // Field-by-field equality (map order in serialized bytes is unstable);
  // explains the difference on failure.
  static ::testing::AssertionResult SameEntry(const Entry& a, const Entry& b);

  std::unique_ptr<Database> db_;
};

}  // namespace im::storage::testing

#define INSTANTIATE_STORE_CONTRACT_TESTS(prefix, factory)                    \
  INSTANTIATE_TEST_SUITE_P(prefix, UserStoreContractTest,                    \
                           ::testing::Values(factory));                      \
  INSTANTIATE_TEST_SUITE_P(prefix, SessionStoreContractTest,                 \
                           ::testing::Values(factory));                      \
  INSTANTIATE_TEST_SUITE_P(prefix, ConversationLogContractTest,              \
                           ::testing::Values(factory));                      \
  INSTANTIATE_TEST_SUITE_P(prefix, MembershipContractTest,                   \
                           ::testing::Values(factory));                      \
  INSTANTIATE_TEST_SUITE_P(prefix, ConversationReaderContractTest,           \
                           ::testing::Values(factory));                      \
  INSTANTIATE_TEST_SUITE_P(prefix, ReadMarkerContractTest,                   \
                           ::testing::Values(factory))

namespace im::storage::testing {
// The suites (defined in the *_contract.cc files of :store_contract).
class UserStoreContractTest : public StoreContractTest {};
class SessionStoreContractTest : public StoreContractTest {};
class ConversationLogContractTest : public StoreContractTest {};
class MembershipContractTest : public StoreContractTest {};
class ConversationReaderContractTest : public StoreContractTest {};
class ReadMarkerContractTest : public StoreContractTest {};
}  // namespace im::storage::testing

#endif  // IM_STORAGE_TESTING_STORE_CONTRACT_H_
