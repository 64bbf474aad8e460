#include "storage/mysql/mysql_pool.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cppconn/driver.h"
#include "cppconn/statement.h"
#include "mysql_driver.h"
#include "storage/mysql/mysql_status.h"

namespace im::storage {
namespace {

// ER_MAX_PREPARED_STMT_COUNT_REACHED: the server-wide statement limit.
constexpr int kTooManyPreparedStatements = 1461;

sql::Driver* Driver() {
  // Creating the driver initializes the client library; C++ makes this
  // initialization thread-safe.
  static sql::Driver* const driver = sql::mysql::get_mysql_driver_instance();
  return driver;
}

int WholeSeconds(absl::Duration d) {
  return static_cast<int>(absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))));
}

}  // namespace

MysqlConnection::MysqlConnection(std::unique_ptr<sql::Connection> connection,
                                 int max_cached_statements)
    : connection_(std::move(connection)),
      max_cached_statements_(static_cast<size_t>(max_cached_statements)) {}

MysqlConnection::~MysqlConnection() {
  statement_index_.clear();
  statements_.clear();
  try {
    connection_.reset();
  } catch (...) {
    // Closing a dead session can throw; there is nothing left to clean up.
  }
}

sql::PreparedStatement& MysqlConnection::Prepare(const std::string& sql) {
  if (auto it = statement_index_.find(sql); it != statement_index_.end()) {
    statements_.splice(statements_.begin(), statements_, it->second);
    it->second->second->clearParameters();
    return *it->second->second;
  }
  std::unique_ptr<sql::PreparedStatement> statement;
  try {
    statement.reset(connection_->prepareStatement(sql));
  } catch (const sql::SQLException& e) {
    if (e.getErrorCode() != kTooManyPreparedStatements) throw;
    // Give this session's statements back to the server and try once more.
    statement_index_.clear();
    statements_.clear();
    statement.reset(connection_->prepareStatement(sql));
  }
  statements_.emplace_front(sql, std::move(statement));
  statement_index_[sql] = statements_.begin();
  while (statements_.size() > max_cached_statements_) {
    statement_index_.erase(statements_.back().first);
    statements_.pop_back();
  }
  return *statements_.front().second;
}

void MysqlConnection::Execute(const std::string& sql) {
  std::unique_ptr<sql::Statement> statement(connection_->createStatement());
  statement->execute(sql);
}

bool MysqlConnection::Ping() {
  try {
    std::unique_ptr<sql::Statement> statement(connection_->createStatement());
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery("SELECT 1"));
    return rows->next();
  } catch (const std::exception&) {
    broken_ = true;
    return false;
  }
}

MysqlTransaction::MysqlTransaction(MysqlConnection& connection)
    : connection_(connection) {
  connection_.Execute("START TRANSACTION");
}

MysqlTransaction::~MysqlTransaction() {
  if (!open_) return;
  try {
    connection_.Execute("ROLLBACK");
  } catch (const std::exception&) {
    // The session state is unknown: never reuse it.
    connection_.MarkBroken();
  }
}

void MysqlTransaction::Commit() {
  // Whatever happens, the destructor must not roll back afterwards: a failed
  // COMMIT leaves an unknown outcome, and the connection is discarded.
  open_ = false;
  try {
    connection_.Execute("COMMIT");
  } catch (const sql::SQLException& e) {
    if (!IsDeadlock(e)) connection_.MarkBroken();
    throw;
  }
}

MysqlPool::Lease::Lease(MysqlPool* pool,
                        std::unique_ptr<MysqlConnection> connection)
    : pool_(pool), connection_(std::move(connection)) {}

MysqlPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      connection_(std::move(other.connection_)) {}

MysqlPool::Lease& MysqlPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    connection_ = std::move(other.connection_);
  }
  return *this;
}

MysqlPool::Lease::~Lease() { Release(); }

void MysqlPool::Lease::Release() {
  if (pool_ != nullptr && connection_ != nullptr) {
    pool_->Return(std::move(connection_));
  }
  pool_ = nullptr;
}

MysqlPool::MysqlPool(const MysqlOptions& options, MysqlPoolObserver* observer)
    : options_(options),
      observer_(observer != nullptr ? observer : &no_observer_) {}

MysqlPool::~MysqlPool() {
  std::vector<std::unique_ptr<MysqlConnection>> idle;
  {
    absl::MutexLock lock(&mu_);
    idle.swap(idle_);
    open_ -= static_cast<int>(idle.size());
  }
}

absl::StatusOr<std::unique_ptr<MysqlPool>> MysqlPool::Create(
    const MysqlOptions& options, MysqlPoolObserver* observer) {
  if (auto s = ValidateMysqlOptions(options); !s.ok()) return s;
  std::unique_ptr<MysqlPool> pool(new MysqlPool(options, observer));
  absl::StatusOr<Lease> first = pool->Acquire();
  if (!first.ok()) {
    return absl::Status(first.status().code(),
                        absl::StrCat("cannot reach ", RedactedMysqlDsn(options),
                                     ": ", first.status().message()));
  }
  return pool;
}

absl::StatusOr<std::unique_ptr<MysqlConnection>> MysqlPool::Connect() {
  const absl::Time start = absl::Now();
  absl::Status status;
  std::unique_ptr<MysqlConnection> connection;
  try {
    sql::ConnectOptionsMap properties;
    const bool ipv6 = options_.host.find(':') != std::string::npos;
    properties["hostName"] = sql::SQLString(
        absl::StrCat("tcp://", ipv6 ? "[" : "", options_.host, ipv6 ? "]" : "",
                     ":", options_.port));
    properties["userName"] = sql::SQLString(options_.user);
    properties["password"] = sql::SQLString(options_.password);
    if (!options_.database.empty()) {
      properties["schema"] = sql::SQLString(options_.database);
    }
    properties["OPT_CONNECT_TIMEOUT"] = WholeSeconds(options_.connect_timeout);
    properties["OPT_READ_TIMEOUT"] = WholeSeconds(options_.read_timeout);
    properties["OPT_WRITE_TIMEOUT"] = WholeSeconds(options_.write_timeout);
    // A silent reconnect would lose the session settings and any open
    // transaction; the pool reconnects instead.
    properties["OPT_RECONNECT"] = false;
    properties["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    // UPDATE reports matched rows, so "0 rows" means "no such row".
    properties["CLIENT_FOUND_ROWS"] = true;
    properties["CLIENT_MULTI_STATEMENTS"] = false;

    std::unique_ptr<sql::Connection> raw(Driver()->connect(properties));
    connection = std::make_unique<MysqlConnection>(
        std::move(raw), options_.max_cached_statements);
    connection->Execute("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci");
    connection->Execute(absl::StrCat(
        "SET time_zone = '+00:00', "
        "sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', "
        "innodb_lock_wait_timeout = ",
        WholeSeconds(options_.lock_wait_timeout)));
    connection->Execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
  } catch (const sql::SQLException& e) {
    status = SqlExceptionToStatus(e);
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("mysql connect: ", e.what()));
  }
  observer_->OnConnect(absl::Now() - start, status);
  if (!status.ok()) return status;
  return connection;
}

bool MysqlPool::CanLeaseLocked() const {
  return !idle_.empty() || open_ < options_.pool_size;
}

void MysqlPool::ReportStateLocked() { observer_->OnPoolState(in_use_, open_); }

absl::StatusOr<MysqlPool::Lease> MysqlPool::Acquire() {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options_.acquire_timeout;
  bool waited = false;
  absl::Status status;
  for (;;) {
    std::unique_ptr<MysqlConnection> connection;
    bool validate = false;
    {
      absl::MutexLock lock(&mu_);
      if (!CanLeaseLocked()) {
        waited = true;
        ++waiting_;
        const bool ready = mu_.AwaitWithDeadline(
            absl::Condition(this, &MysqlPool::CanLeaseLocked), deadline);
        --waiting_;
        if (!ready) {
          status = absl::UnavailableError(absl::StrCat(
              "mysql pool: no free connection within ",
              absl::FormatDuration(options_.acquire_timeout), " (",
              options_.pool_size, " in use)"));
          break;
        }
      }
      ++in_use_;
      if (!idle_.empty()) {
        connection = std::move(idle_.back());
        idle_.pop_back();
        validate = connection->last_used_ < suspect_before_ ||
                   absl::Now() - connection->last_used_ >
                       options_.validate_after_idle;
      } else {
        ++open_;  // reserve the slot while connecting
      }
      ReportStateLocked();
    }
    if (connection != nullptr) {
      if (validate && !connection->Ping()) {
        Discard(std::move(connection), /*connection_lost=*/true);
        continue;
      }
      observer_->OnAcquire(absl::Now() - start, waited, absl::OkStatus());
      return Lease(this, std::move(connection));
    }
    absl::StatusOr<std::unique_ptr<MysqlConnection>> connected = Connect();
    if (connected.ok()) {
      observer_->OnAcquire(absl::Now() - start, waited, absl::OkStatus());
      return Lease(this, *std::move(connected));
    }
    status = connected.status();
    absl::MutexLock lock(&mu_);
    --open_;
    --in_use_;
    // The server may be down: check idle sessions before trusting them.
    suspect_before_ = absl::Now();
    ReportStateLocked();
    break;
  }
  observer_->OnAcquire(absl::Now() - start, waited, status);
  return status;
}

void MysqlPool::Return(std::unique_ptr<MysqlConnection> connection) {
  if (connection->broken()) {
    Discard(std::move(connection), /*connection_lost=*/true);
    return;
  }
  connection->last_used_ = absl::Now();
  absl::MutexLock lock(&mu_);
  --in_use_;
  idle_.push_back(std::move(connection));
  ReportStateLocked();
}

void MysqlPool::Discard(std::unique_ptr<MysqlConnection> connection,
                        bool connection_lost) {
  connection.reset();  // closes the session outside the lock
  observer_->OnDiscard();
  absl::MutexLock lock(&mu_);
  --in_use_;
  --open_;
  if (connection_lost) suspect_before_ = absl::Now();
  ReportStateLocked();
}

MysqlPool::Stats MysqlPool::stats() const {
  absl::MutexLock lock(&mu_);
  Stats stats;
  stats.in_use = in_use_;
  stats.idle = static_cast<int>(idle_.size());
  stats.open = open_;
  stats.waiting = waiting_;
  return stats;
}

absl::Status MysqlPool::RunOnce(
    MysqlConnection& connection, bool transaction,
    absl::FunctionRef<absl::Status(MysqlConnection&)> fn, bool* deadlock) {
  *deadlock = false;
  try {
    if (!transaction) return fn(connection);
    MysqlTransaction tx(connection);
    absl::Status status = fn(connection);
    if (status.ok()) tx.Commit();
    return status;
  } catch (const sql::SQLException& e) {
    if (ShouldDiscardConnection(e)) connection.MarkBroken();
    *deadlock = IsDeadlock(e);
    return SqlExceptionToStatus(e);
  } catch (const std::exception& e) {
    connection.MarkBroken();
    return absl::InternalError(absl::StrCat("mysql: ", e.what()));
  }
}

absl::Status MysqlPool::RunWithRetries(
    absl::string_view operation, bool transaction,
    absl::FunctionRef<absl::Status(MysqlConnection&)> fn) {
  const absl::Time start = absl::Now();
  int attempts = 0;
  absl::Status status;
  absl::StatusOr<Lease> lease = Acquire();
  if (!lease.ok()) {
    status = lease.status();
  } else {
    for (;;) {
      ++attempts;
      bool deadlock = false;
      status = RunOnce(**lease, transaction, fn, &deadlock);
      if (!transaction || !deadlock ||
          attempts >= options_.max_transaction_attempts ||
          (*lease)->broken()) {
        break;
      }
      // Let the transaction that won the deadlock finish.
      absl::SleepFor(absl::Milliseconds(attempts));
    }
  }
  observer_->OnOperation(operation, absl::Now() - start, status, attempts);
  return status;
}

absl::Status MysqlPool::Run(
    absl::string_view operation,
    absl::FunctionRef<absl::Status(MysqlConnection&)> fn) {
  return RunWithRetries(operation, /*transaction=*/false, fn);
}

absl::Status MysqlPool::RunInTransaction(
    absl::string_view operation,
    absl::FunctionRef<absl::Status(MysqlConnection&)> fn) {
  return RunWithRetries(operation, /*transaction=*/true, fn);
}

}  // namespace im::storage
