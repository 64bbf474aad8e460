#include "storage/mysql/mysql_database.h"

#include <utility>

#include "storage/mysql/mysql_stores.h"

namespace im::storage {

absl::StatusOr<std::unique_ptr<MysqlDatabase>> MysqlDatabase::Create(
    const MysqlOptions& options, MysqlPoolObserver* observer) {
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool =
      MysqlPool::Create(options, observer);
  if (!pool.ok()) return pool.status();
  return std::unique_ptr<MysqlDatabase>(new MysqlDatabase(*std::move(pool)));
}

MysqlDatabase::MysqlDatabase(std::unique_ptr<MysqlPool> pool)
    : pool_(std::move(pool)),
      users_(NewMysqlUserStore(pool_.get())),
      sessions_(NewMysqlSessionStore(pool_.get())),
      log_(NewMysqlConversationLog(pool_.get())),
      reader_(NewMysqlConversationReader(pool_.get())),
      read_markers_(NewMysqlReadMarkerStore(pool_.get())) {}

// The stores go before the pool they use.
MysqlDatabase::~MysqlDatabase() = default;

}  // namespace im::storage
