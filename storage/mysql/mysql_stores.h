#ifndef IM_STORAGE_MYSQL_MYSQL_STORES_H_
#define IM_STORAGE_MYSQL_MYSQL_STORES_H_

#include <memory>

#include "storage/conversation_store.h"
#include "storage/mysql/mysql_pool.h"
#include "storage/session_store.h"
#include "storage/user_store.h"

// The MySQL store implementations over one pool (internal; build them with
// MysqlDatabase). The pool must outlive them.

namespace im::storage {

std::unique_ptr<UserStore> NewMysqlUserStore(MysqlPool* pool);
std::unique_ptr<SessionStore> NewMysqlSessionStore(MysqlPool* pool);
std::unique_ptr<ConversationLog> NewMysqlConversationLog(MysqlPool* pool);
std::unique_ptr<ConversationReader> NewMysqlConversationReader(MysqlPool* pool);
std::unique_ptr<ReadMarkerStore> NewMysqlReadMarkerStore(MysqlPool* pool);

}  // namespace im::storage

#endif  // IM_STORAGE_MYSQL_MYSQL_STORES_H_
