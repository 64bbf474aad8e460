#ifndef IM_STORAGE_FAKE_FAKE_DATABASE_H_
#define IM_STORAGE_FAKE_FAKE_DATABASE_H_

#include <memory>

#include "absl/status/status.h"
#include "storage/database.h"

namespace im::storage {

struct FakeState;

// Every store interface in memory over one shared state, for tests of the
// services. Thread-safe. Behaves like the MySQL stores (same codes, same
// seqs, same orderings; ids count up from 1) and passes the same contract
// suites (storage/testing).
class FakeDatabase : public Database {
 public:
  FakeDatabase();
  ~FakeDatabase() override;
  FakeDatabase(const FakeDatabase&) = delete;
  FakeDatabase& operator=(const FakeDatabase&) = delete;

  UserStore* users() override;
  SessionStore* sessions() override;
  ConversationLog* log() override;
  ReadMarkerStore* read_markers() override;
  ConversationReader* reader() override;

  // Fault injection: the next `calls` store calls (any store; a negative
  // count means every call until ClearFailure) return `status` and change
  // nothing, as a database outage (UNAVAILABLE) or deadlock (ABORTED) would.
  void InjectFailure(absl::Status status, int calls = -1);
  void ClearFailure();

 private:
  std::unique_ptr<FakeState> state_;
  std::unique_ptr<UserStore> users_;
  std::unique_ptr<SessionStore> sessions_;
  std::unique_ptr<ConversationLog> log_;
  std::unique_ptr<ConversationReader> reader_;
  std::unique_ptr<ReadMarkerStore> read_markers_;
};

}  // namespace im::storage

#endif  // IM_STORAGE_FAKE_FAKE_DATABASE_H_
