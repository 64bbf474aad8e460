#ifndef IM_STORAGE_MYSQL_MYSQL_POOL_H_
#define IM_STORAGE_MYSQL_MYSQL_POOL_H_

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cppconn/connection.h"
#include "cppconn/prepared_statement.h"
#include "storage/mysql/mysql_options.h"

namespace im::storage {

// Hooks for metrics (observability implements them; storage/ does not
// depend on Prometheus). Called on the threads that use the pool, sometimes
// under the pool's lock: implementations must be thread-safe, cheap, and
// never call back into the pool. Every method has a no-op default.
class MysqlPoolObserver {
 public:
  virtual ~MysqlPoolObserver() = default;

  // Acquire finished after `latency` (waiting for a slot, validating and
  // connecting included); `waited` when it had to wait for a free slot.
  virtual void OnAcquire(absl::Duration latency, bool waited,
                         const absl::Status& status) {}
  // Connections leased and open (leased + idle + connecting) just changed.
  virtual void OnPoolState(int in_use, int open) {}
  // A new connection was attempted.
  virtual void OnConnect(absl::Duration latency, const absl::Status& status) {}
  // A broken or stale connection was dropped.
  virtual void OnDiscard() {}
  // One named operation (e.g. "log.append_messages") finished: its total
  // latency, result, and transaction attempts (1 unless deadlocks retried).
  virtual void OnOperation(absl::string_view operation, absl::Duration latency,
                           const absl::Status& status, int attempts) {}
};

// One open MySQL session with the pool's session settings and a cache of
// its prepared statements. Used by one thread at a time (through a lease).
// Its methods throw sql::SQLException; call them inside MysqlPool::Run or
// RunInTransaction, which catch and map them.
class MysqlConnection {
 public:
  MysqlConnection(std::unique_ptr<sql::Connection> connection,
                  int max_cached_statements);
  ~MysqlConnection();
  MysqlConnection(const MysqlConnection&) = delete;
  MysqlConnection& operator=(const MysqlConnection&) = delete;

  // The prepared statement for `sql`, prepared on first use and cached;
  // parameters cleared. Stays valid while fewer than max_cached_statements
  // other statements are prepared on this connection.
  sql::PreparedStatement& Prepare(const std::string& sql);
  // Runs a statement without parameters or results (SET, START
  // TRANSACTION, DDL).
  void Execute(const std::string& sql);
  // Round trip to the server; false when the session is gone.
  bool Ping();

  // Set when an error left the session unusable; the pool then drops it.
  void MarkBroken() { broken_ = true; }
  bool broken() const { return broken_; }

 private:
  friend class MysqlPool;
  using StatementList =
      std::list<std::pair<std::string, std::unique_ptr<sql::PreparedStatement>>>;

  std::unique_ptr<sql::Connection> connection_;
  const size_t max_cached_statements_;
  // Most recently used first.
  StatementList statements_;
  std::unordered_map<std::string, StatementList::iterator> statement_index_;
  bool broken_ = false;
  absl::Time last_used_ = absl::InfinitePast();
};

// START TRANSACTION when constructed; ROLLBACK when destroyed uncommitted
// (a failed rollback marks the connection broken). Throws like
// MysqlConnection; RunInTransaction is the usual way to use it.
class MysqlTransaction {
 public:
  explicit MysqlTransaction(MysqlConnection& connection);
  ~MysqlTransaction();
  MysqlTransaction(const MysqlTransaction&) = delete;
  MysqlTransaction& operator=(const MysqlTransaction&) = delete;

  void Commit();

 private:
  MysqlConnection& connection_;
  bool open_ = true;
};

// A bounded, thread-safe pool of MySQL connections (Connector/C++ 1.1).
//
// Connections are opened lazily up to pool_size. A leased connection that
// fails with a connection error is discarded; any connection error also
// makes every idle connection suspect, so each is pinged before its next
// use, as is any connection idle longer than validate_after_idle. The pool
// therefore rides out a server restart: during the outage calls fail with
// UNAVAILABLE (bounded by acquire_timeout plus the socket timeouts), and
// afterwards new sessions are opened without restarting the process.
//
// Session settings: utf8mb4, time_zone '+00:00', strict sql_mode,
// innodb_lock_wait_timeout, and READ COMMITTED isolation. READ COMMITTED
// because every read-modify-write in the stores locks the rows it depends on
// explicitly (SELECT ... FOR UPDATE on the conversation row serializes
// writers of a conversation), so REPEATABLE READ's snapshot adds nothing
// but gap/next-key locks, which cause deadlocks between concurrent
// inserters; and each statement sees the latest committed rows.
class MysqlPool {
 public:
  // Validates options and opens one connection to fail fast on a wrong
  // address or credentials. `observer` (may be null) must outlive the pool.
  static absl::StatusOr<std::unique_ptr<MysqlPool>> Create(
      const MysqlOptions& options, MysqlPoolObserver* observer = nullptr);

  // Every lease must be returned before the pool is destroyed.
  ~MysqlPool();
  MysqlPool(const MysqlPool&) = delete;
  MysqlPool& operator=(const MysqlPool&) = delete;

  // Exclusive use of one connection until destroyed (returned to the pool,
  // or dropped if broken).
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();

    MysqlConnection& operator*() const { return *connection_; }
    MysqlConnection* operator->() const { return connection_.get(); }

   private:
    friend class MysqlPool;
    Lease(MysqlPool* pool, std::unique_ptr<MysqlConnection> connection);
    void Release();

    MysqlPool* pool_ = nullptr;
    std::unique_ptr<MysqlConnection> connection_;
  };

  // A validated connection, waiting up to acquire_timeout for a free slot.
  // UNAVAILABLE when none frees up in time or the server cannot be reached.
  absl::StatusOr<Lease> Acquire();

  // Runs `fn` on a leased connection in autocommit mode. sql::SQLException
  // (and any std::exception) thrown by fn becomes a Status; the operation is
  // reported to the observer under `operation`.
  absl::Status Run(absl::string_view operation,
                   absl::FunctionRef<absl::Status(MysqlConnection&)> fn);
  template <typename T, typename Fn>
  absl::StatusOr<T> Run(absl::string_view operation, Fn&& fn);

  // Runs `fn` inside START TRANSACTION ... COMMIT. A non-OK status from fn
  // rolls back. A deadlock rolls back and runs fn again (up to
  // max_transaction_attempts), so fn must be safe to re-run from scratch.
  // A failed COMMIT is reported as is (UNAVAILABLE: outcome unknown).
  absl::Status RunInTransaction(
      absl::string_view operation,
      absl::FunctionRef<absl::Status(MysqlConnection&)> fn);
  template <typename T, typename Fn>
  absl::StatusOr<T> RunInTransaction(absl::string_view operation, Fn&& fn);

  const MysqlOptions& options() const { return options_; }

  struct Stats {
    int in_use = 0;
    int idle = 0;
    int open = 0;  // in_use + idle + connecting
    int waiting = 0;
  };
  Stats stats() const;

 private:
  MysqlPool(const MysqlOptions& options, MysqlPoolObserver* observer);

  absl::StatusOr<std::unique_ptr<MysqlConnection>> Connect();
  void Return(std::unique_ptr<MysqlConnection> connection);
  void Discard(std::unique_ptr<MysqlConnection> connection,
               bool connection_lost);
  void ReportStateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CanLeaseLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RunOnce(MysqlConnection& connection, bool transaction,
                       absl::FunctionRef<absl::Status(MysqlConnection&)> fn,
                       bool* deadlock);
  absl::Status RunWithRetries(
      absl::string_view operation, bool transaction,
      absl::FunctionRef<absl::Status(MysqlConnection&)> fn);

  const MysqlOptions options_;
  MysqlPoolObserver* const observer_;
  MysqlPoolObserver no_observer_;

  mutable absl::Mutex mu_;
  // Most recently returned last (handed out first: keeps few sessions hot).
  std::vector<std::unique_ptr<MysqlConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  // Idle connections last used before this are pinged before reuse.
  absl::Time suspect_before_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

template <typename T, typename Fn>
absl::StatusOr<T> MysqlPool::Run(absl::string_view operation, Fn&& fn) {
  std::optional<T> result;
  absl::Status status =
      Run(operation, [&](MysqlConnection& connection) -> absl::Status {
        absl::StatusOr<T> r = fn(connection);
        if (!r.ok()) return r.status();
        result = *std::move(r);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return *std::move(result);
}

template <typename T, typename Fn>
absl::StatusOr<T> MysqlPool::RunInTransaction(absl::string_view operation,
                                              Fn&& fn) {
  std::optional<T> result;
  absl::Status status = RunInTransaction(
      operation, [&](MysqlConnection& connection) -> absl::Status {
        absl::StatusOr<T> r = fn(connection);
        if (!r.ok()) return r.status();
        result = *std::move(r);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return *std::move(result);
}

}  // namespace im::storage

#endif  // IM_STORAGE_MYSQL_MYSQL_POOL_H_
