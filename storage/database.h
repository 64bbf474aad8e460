#ifndef IM_STORAGE_DATABASE_H_
#define IM_STORAGE_DATABASE_H_

#include "storage/conversation_store.h"
#include "storage/session_store.h"
#include "storage/user_store.h"

namespace im::storage {

// Every store over one backing database: MysqlDatabase (storage/mysql) or
// FakeDatabase (storage/fake). The stores live as long as the Database.
class Database {
 public:
  virtual ~Database() = default;

  virtual UserStore* users() = 0;
  virtual SessionStore* sessions() = 0;
  virtual ConversationLog* log() = 0;
  virtual ConversationReader* reader() = 0;
  virtual ReadMarkerStore* read_markers() = 0;
};

}  // namespace im::storage

#endif  // IM_STORAGE_DATABASE_H_
