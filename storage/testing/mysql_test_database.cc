#include "storage/testing/mysql_test_database.h"

#include <utility>

#include "gtest/gtest.h"
#include "storage/mysql/mysql_database.h"
#include "storage/testing/test_database.h"

namespace im::storage::testing {
namespace {

class MysqlTestDatabase : public Database {
 public:
  MysqlTestDatabase(std::unique_ptr<TestDatabase> test_db,
                    std::unique_ptr<MysqlDatabase> db)
      : test_db_(std::move(test_db)), db_(std::move(db)) {}

  UserStore* users() override { return db_->users(); }
  SessionStore* sessions() override { return db_->sessions(); }
  ConversationLog* log() override { return db_->log(); }
  ConversationReader* reader() override { return db_->reader(); }
  ReadMarkerStore* read_markers() override { return db_->read_markers(); }

 private:
  // Declared first: dropped after the pool is closed.
  std::unique_ptr<TestDatabase> test_db_;
  std::unique_ptr<MysqlDatabase> db_;
};

}  // namespace

std::unique_ptr<Database> MakeMysqlTestDatabase() {
  std::unique_ptr<TestDatabase> test_db = TestDatabase::CreateOrFail();
  if (test_db == nullptr) return nullptr;
  absl::StatusOr<std::unique_ptr<MysqlDatabase>> db =
      MysqlDatabase::Create(test_db->options());
  if (!db.ok()) {
    ADD_FAILURE() << "MysqlDatabase::Create: " << db.status();
    return nullptr;
  }
  return std::make_unique<MysqlTestDatabase>(std::move(test_db),
                                             *std::move(db));
}

}  // namespace im::storage::testing
