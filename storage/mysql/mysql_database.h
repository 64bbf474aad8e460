#ifndef IM_STORAGE_MYSQL_MYSQL_DATABASE_H_
#define IM_STORAGE_MYSQL_MYSQL_DATABASE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "storage/database.h"
#include "storage/mysql/mysql_options.h"
#include "storage/mysql/mysql_pool.h"

namespace im::storage {

// Every store over one MySQL pool. All SQL runs through prepared
// statements. The schema must be migrated (ApplyMigrations in
// storage/migrations, or //storage:migrate_main).
class MysqlDatabase : public Database {
 public:
  // Opens the pool (fails fast when the server is unreachable or the
  // credentials are wrong). `observer` may be null and must outlive this.
  static absl::StatusOr<std::unique_ptr<MysqlDatabase>> Create(
      const MysqlOptions& options, MysqlPoolObserver* observer = nullptr);
  ~MysqlDatabase() override;

  UserStore* users() override { return users_.get(); }
  SessionStore* sessions() override { return sessions_.get(); }
  ConversationLog* log() override { return log_.get(); }
  ConversationReader* reader() override { return reader_.get(); }
  ReadMarkerStore* read_markers() override { return read_markers_.get(); }
  MysqlPool* pool() { return pool_.get(); }

 private:
  explicit MysqlDatabase(std::unique_ptr<MysqlPool> pool);

  std::unique_ptr<MysqlPool> pool_;
  std::unique_ptr<UserStore> users_;
  std::unique_ptr<SessionStore> sessions_;
  std::unique_ptr<ConversationLog> log_;
  std::unique_ptr<ConversationReader> reader_;
  std::unique_ptr<ReadMarkerStore> read_markers_;
};

}  // namespace im::storage

#endif  // IM_STORAGE_MYSQL_MYSQL_DATABASE_H_
