#ifndef IM_STORAGE_MYSQL_MYSQL_STATUS_H_
#define IM_STORAGE_MYSQL_MYSQL_STATUS_H_

#include "absl/status/status.h"
#include "cppconn/exception.h"

// The one place sql::SQLException becomes absl::Status. No exception leaves
// storage/: MysqlPool::Run and RunInTransaction catch everything.

namespace im::storage {

// 1062/1586 duplicate key -> ALREADY_EXISTS; 1213 deadlock and 1205 lock
// wait timeout -> ABORTED; lost or refused connections, server shutdown,
// "too many connections" and a read-only server -> UNAVAILABLE; anything else -> INTERNAL. The
// message carries the MySQL error number, SQLSTATE and text.
absl::Status SqlExceptionToStatus(const sql::SQLException& e);

// The server or the network went away: lost or refused connections,
// SQLSTATE 08xxx, server shutdown, KILL.
bool IsConnectionLost(const sql::SQLException& e);

// The connection that threw `e` must not be reused: lost, or in an unknown
// state after any client-side error (2000-2999).
bool ShouldDiscardConnection(const sql::SQLException& e);

// InnoDB chose this transaction as a deadlock victim: retrying it may work.
bool IsDeadlock(const sql::SQLException& e);

}  // namespace im::storage

#endif  // IM_STORAGE_MYSQL_MYSQL_STATUS_H_
