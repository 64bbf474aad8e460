#include "storage/mysql/mysql_status.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace im::storage {
namespace {

// Server error numbers (mysqld_error.h) and client ones (errmsg.h).
constexpr int kDuplicateEntry = 1062;
constexpr int kDuplicateEntryWithKeyName = 1586;
constexpr int kLockWaitTimeout = 1205;
constexpr int kLockDeadlock = 1213;
constexpr int kTooManyConnections = 1040;
constexpr int kReadOnlyServer = 1290;  // failover in progress

bool IsClientError(int code) { return code >= 2000 && code <= 2999; }

// The server or the network went away (or is going away).
bool IsLostConnectionCode(int code) {
  switch (code) {
    case 1053:  // server shutdown in progress
    case 1317:  // query interrupted (shutdown, KILL)
    case 1927:  // connection killed (MariaDB)
    case 2001:  // cannot create socket
    case 2002:  // cannot connect through socket
    case 2003:  // cannot connect to host
    case 2004:  // cannot create TCP/IP socket
    case 2005:  // unknown host
    case 2006:  // server has gone away
    case 2012:  // handshake error
    case 2013:  // lost connection during query
    case 2026:  // SSL connection error
    case 2055:  // lost connection (extended)
      return true;
    default:
      return false;
  }
}

std::string Describe(const sql::SQLException& e) {
  return absl::StrCat("mysql error ", e.getErrorCode(), " (", e.getSQLState(),
                      "): ", e.what());
}

}  // namespace

bool IsConnectionLost(const sql::SQLException& e) {
  return IsLostConnectionCode(e.getErrorCode()) ||
         absl::StartsWith(e.getSQLState(), "08");
}

bool ShouldDiscardConnection(const sql::SQLException& e) {
  return IsConnectionLost(e) || IsClientError(e.getErrorCode());
}

bool IsDeadlock(const sql::SQLException& e) {
  return e.getErrorCode() == kLockDeadlock;
}

absl::Status SqlExceptionToStatus(const sql::SQLException& e) {
  const int code = e.getErrorCode();
  const std::string message = Describe(e);
  if (code == kDuplicateEntry || code == kDuplicateEntryWithKeyName) {
    return absl::AlreadyExistsError(message);
  }
  if (code == kLockDeadlock || code == kLockWaitTimeout) {
    return absl::AbortedError(message);
  }
  if (code == kTooManyConnections || code == kReadOnlyServer ||
      IsConnectionLost(e)) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

}  // namespace im::storage
