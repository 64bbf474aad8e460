#include <memory>

#include "gtest/gtest.h"
#include "storage/mysql/mysql_database.h"
#include "storage/testing/store_contract.h"
#include "storage/testing/test_database.h"

namespace im::storage::testing {
namespace {

// A MysqlDatabase over its own fresh test database, dropped afterwards.
class MysqlTestDatabase : public Database {
 public:
  static std::unique_ptr<Database> Make() {
    std::unique_ptr<TestDatabase> test_db = TestDatabase::CreateOrFail();
    if (test_db == nullptr) return nullptr;
    absl::StatusOr<std::unique_ptr<MysqlDatabase>> db =
        MysqlDatabase::Create(test_db->options());
    if (!db.ok()) {
      ADD_FAILURE() << "MysqlDatabase::Create: " << db.status();
      return nullptr;
    }
    return std::unique_ptr<Database>(
        new MysqlTestDatabase(std::move(test_db), *std::move(db)));
  }

  UserStore* users() override { return db_->users(); }
  SessionStore* sessions() override { return db_->sessions(); }
  ConversationLog* log() override { return db_->log(); }
  ConversationReader* reader() override { return db_->reader(); }
  ReadMarkerStore* read_markers() override { return db_->read_markers(); }

 private:
  MysqlTestDatabase(std::unique_ptr<TestDatabase> test_db,
                    std::unique_ptr<MysqlDatabase> db)
      : test_db_(std::move(test_db)), db_(std::move(db)) {}

  // Declared first: dropped after the pool is closed.
  std::unique_ptr<TestDatabase> test_db_;
  std::unique_ptr<MysqlDatabase> db_;
};

INSTANTIATE_STORE_CONTRACT_TESTS(
    Mysql, (StoreFactory{"mysql", &MysqlTestDatabase::Make}));

}  // namespace
}  // namespace im::storage::testing
