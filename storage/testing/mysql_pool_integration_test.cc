#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "cppconn/resultset.h"
#include "gtest/gtest.h"
#include "storage/mysql/mysql_pool.h"
#include "storage/testing/test_database.h"

namespace im::storage::testing {
namespace {

// Records what the pool reports.
class RecordingObserver : public MysqlPoolObserver {
 public:
  void OnAcquire(absl::Duration, bool waited, const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ++acquires_;
    if (waited) ++waits_;
    if (!status.ok()) ++failed_acquires_;
  }
  void OnPoolState(int in_use, int open) override {
    absl::MutexLock lock(&mu_);
    max_in_use_ = std::max(max_in_use_, in_use);
    max_open_ = std::max(max_open_, open);
  }
  void OnDiscard() override {
    absl::MutexLock lock(&mu_);
    ++discards_;
  }
  void OnOperation(absl::string_view operation, absl::Duration,
                   const absl::Status& status, int attempts) override {
    absl::MutexLock lock(&mu_);
    operations_[std::string(operation)].push_back({status.code(), attempts});
  }

  struct Op {
    absl::StatusCode code;
    int attempts;
  };
  std::vector<Op> operations(const std::string& name) {
    absl::MutexLock lock(&mu_);
    return operations_[name];
  }
  int acquires() { absl::MutexLock lock(&mu_); return acquires_; }
  int waits() { absl::MutexLock lock(&mu_); return waits_; }
  int failed_acquires() { absl::MutexLock lock(&mu_); return failed_acquires_; }
  int discards() { absl::MutexLock lock(&mu_); return discards_; }
  int max_in_use() { absl::MutexLock lock(&mu_); return max_in_use_; }
  int max_open() { absl::MutexLock lock(&mu_); return max_open_; }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<Op>> operations_ ABSL_GUARDED_BY(mu_);
  int acquires_ ABSL_GUARDED_BY(mu_) = 0;
  int waits_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_acquires_ ABSL_GUARDED_BY(mu_) = 0;
  int discards_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_use_ ABSL_GUARDED_BY(mu_) = 0;
  int max_open_ ABSL_GUARDED_BY(mu_) = 0;
};

class MysqlPoolIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TestDatabaseOptions options;
    options.apply_migrations = false;
    db_ = TestDatabase::CreateOrFail(options);
    ASSERT_NE(db_, nullptr);
  }

  std::unique_ptr<MysqlPool> Pool(MysqlOptions options,
                                  MysqlPoolObserver* observer = nullptr) {
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool =
        MysqlPool::Create(options, observer);
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? *std::move(pool) : nullptr;
  }

  static absl::Status Exec(MysqlPool& pool, const std::string& sql) {
    return pool.Run("test.exec", [&](MysqlConnection& c) -> absl::Status {
      c.Execute(sql);
      return absl::OkStatus();
    });
  }

  static absl::StatusOr<std::string> Scalar(MysqlPool& pool,
                                            const std::string& sql) {
    return pool.Run<std::string>(
        "test.scalar", [&](MysqlConnection& c) -> absl::StatusOr<std::string> {
          std::unique_ptr<sql::ResultSet> rows(c.Prepare(sql).executeQuery());
          if (!rows->next()) return absl::NotFoundError("no row");
          return rows->getString(1).asStdString();
        });
  }

  std::unique_ptr<TestDatabase> db_;
};

TEST_F(MysqlPoolIntegrationTest, SessionSettings) {
  std::unique_ptr<MysqlPool> pool = Pool(db_->options());
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(*Scalar(*pool, "SELECT @@time_zone"), "+00:00");
  EXPECT_EQ(*Scalar(*pool, "SELECT @@character_set_connection"), "utf8mb4");
  EXPECT_EQ(*Scalar(*pool, "SELECT @@character_set_client"), "utf8mb4");
  EXPECT_EQ(*Scalar(*pool, "SELECT @@character_set_results"), "utf8mb4");
  EXPECT_NE(Scalar(*pool, "SELECT @@sql_mode")->find("STRICT_ALL_TABLES"),
            std::string::npos);
  EXPECT_EQ(*Scalar(*pool, "SELECT @@innodb_lock_wait_timeout"), "10");
  // MariaDB 10.11 names it tx_isolation, MySQL 8 transaction_isolation.
  absl::StatusOr<std::string> isolation = pool->Run<std::string>(
      "test.isolation", [](MysqlConnection& c) -> absl::StatusOr<std::string> {
        std::unique_ptr<sql::ResultSet> rows(
            c.Prepare("SHOW SESSION VARIABLES WHERE Variable_name IN "
                      "('tx_isolation', 'transaction_isolation')")
                .executeQuery());
        if (!rows->next()) return absl::NotFoundError("no isolation variable");
        return rows->getString(2).asStdString();
      });
  ASSERT_TRUE(isolation.ok()) << isolation.status();
  EXPECT_EQ(*isolation, "READ-COMMITTED");
  EXPECT_EQ(*Scalar(*pool, "SELECT DATABASE()"), db_->name());
}

TEST_F(MysqlPoolIntegrationTest, ErrorsBecomeStatusCodes) {
  std::unique_ptr<MysqlPool> pool = Pool(db_->options());
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(Exec(*pool, "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(4))").ok());
  ASSERT_TRUE(Exec(*pool, "INSERT INTO t VALUES (1, 'a')").ok());
  EXPECT_EQ(Exec(*pool, "INSERT INTO t VALUES (1, 'b')").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Exec(*pool, "INSERT INTO t VALUES (2, 'too long')").code(),
            absl::StatusCode::kInternal);  // strict mode: no truncation
  absl::Status syntax = Exec(*pool, "SELEKT 1");
  EXPECT_EQ(syntax.code(), absl::StatusCode::kInternal);
  EXPECT_NE(syntax.message().find("1064"), std::string::npos) << syntax;
  // A non-SQL exception from the callback is caught too.
  absl::Status thrown = pool->Run("test.throw", [](MysqlConnection&) -> absl::Status {
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(thrown.code(), absl::StatusCode::kInternal);
  // The pool still works after all of it.
  EXPECT_EQ(*Scalar(*pool, "SELECT COUNT(*) FROM t"), "1");
}

TEST_F(MysqlPoolIntegrationTest, TransactionsCommitOrRollBack) {
  std::unique_ptr<MysqlPool> pool = Pool(db_->options());
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(Exec(*pool, "CREATE TABLE t (id INT PRIMARY KEY)").ok());
  EXPECT_TRUE(pool->RunInTransaction("test.tx", [](MysqlConnection& c) {
                    c.Execute("INSERT INTO t VALUES (1)");
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(pool->RunInTransaction("test.tx",
                                   [](MysqlConnection& c) {
                                     c.Execute("INSERT INTO t VALUES (2)");
                                     return absl::FailedPreconditionError("no");
                                   })
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool->RunInTransaction("test.tx",
                                   [](MysqlConnection& c) {
                                     c.Execute("INSERT INTO t VALUES (3)");
                                     c.Execute("INSERT INTO t VALUES (1)");
                                     return absl::OkStatus();
                                   })
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*Scalar(*pool, "SELECT GROUP_CONCAT(id ORDER BY id) FROM t"), "1");
}

TEST_F(MysqlPoolIntegrationTest, DeadlockVictimIsRetried) {
  RecordingObserver observer;
  std::unique_ptr<MysqlPool> pool = Pool(db_->options(), &observer);
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(Exec(*pool, "CREATE TABLE t (id INT PRIMARY KEY, v INT)").ok());
  ASSERT_TRUE(Exec(*pool, "INSERT INTO t VALUES (1, 0), (2, 0)").ok());

  // Each transaction locks its first row, waits until both have, then
  // locks the other's: a deadlock on the first attempt only.
  absl::Mutex mu;
  int locked_first = 0;
  auto transfer = [&](int first, int second) {
    std::atomic<int> attempt{0};
    return pool->RunInTransaction("test.transfer", [&](MysqlConnection& c) {
      c.Execute(absl::StrCat("UPDATE t SET v = v + 1 WHERE id = ", first));
      if (attempt++ == 0) {
        absl::MutexLock lock(&mu);
        ++locked_first;
        mu.AwaitWithTimeout(
            absl::Condition(+[](int* n) { return *n >= 2; }, &locked_first),
            absl::Seconds(5));
      }
      c.Execute(absl::StrCat("UPDATE t SET v = v + 1 WHERE id = ", second));
      return absl::OkStatus();
    });
  };
  absl::Status a, b;
  std::thread ta([&] { a = transfer(1, 2); });
  std::thread tb([&] { b = transfer(2, 1); });
  ta.join();
  tb.join();
  EXPECT_TRUE(a.ok()) << a;
  EXPECT_TRUE(b.ok()) << b;
  EXPECT_EQ(*Scalar(*pool, "SELECT SUM(v) FROM t"), "4");
  std::vector<RecordingObserver::Op> ops = observer.operations("test.transfer");
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].attempts + ops[1].attempts, 3);  // one retry
}

TEST_F(MysqlPoolIntegrationTest, LockWaitTimeoutIsAborted) {
  MysqlOptions options = db_->options();
  options.lock_wait_timeout = absl::Seconds(1);
  std::unique_ptr<MysqlPool> pool = Pool(options);
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(Exec(*pool, "CREATE TABLE t (id INT PRIMARY KEY, v INT)").ok());
  ASSERT_TRUE(Exec(*pool, "INSERT INTO t VALUES (1, 0)").ok());
  absl::Notification locked, done;
  std::thread holder([&] {
    EXPECT_TRUE(pool->RunInTransaction("test.hold", [&](MysqlConnection& c) {
                      c.Execute("UPDATE t SET v = 1 WHERE id = 1");
                      locked.Notify();
                      done.WaitForNotificationWithTimeout(absl::Seconds(10));
                      return absl::OkStatus();
                    })
                    .ok());
  });
  locked.WaitForNotification();
  absl::Status blocked = pool->RunInTransaction("test.blocked", [](MysqlConnection& c) {
    c.Execute("UPDATE t SET v = 2 WHERE id = 1");
    return absl::OkStatus();
  });
  done.Notify();
  holder.join();
  EXPECT_EQ(blocked.code(), absl::StatusCode::kAborted) << blocked;
  EXPECT_EQ(*Scalar(*pool, "SELECT v FROM t"), "1");
}

TEST_F(MysqlPoolIntegrationTest, PoolIsBounded) {
  RecordingObserver observer;
  MysqlOptions options = db_->options();
  options.pool_size = 2;
  options.acquire_timeout = absl::Milliseconds(200);
  std::unique_ptr<MysqlPool> pool = Pool(options, &observer);
  ASSERT_NE(pool, nullptr);
  {
    absl::StatusOr<MysqlPool::Lease> a = pool->Acquire();
    absl::StatusOr<MysqlPool::Lease> b = pool->Acquire();
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(pool->stats().in_use, 2);
    EXPECT_EQ(pool->stats().open, 2);
    absl::StatusOr<MysqlPool::Lease> c = pool->Acquire();
    EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
    // A lease handed back wakes a waiter.
    std::thread release([&] {
      absl::SleepFor(absl::Milliseconds(50));
      *a = *std::move(b);  // returns a's connection; b moves into a
    });
    absl::StatusOr<MysqlPool::Lease> d = pool->Acquire();
    release.join();
    EXPECT_TRUE(d.ok()) << d.status();
  }
  EXPECT_EQ(pool->stats().in_use, 0);
  EXPECT_EQ(pool->stats().idle, 2);
  EXPECT_EQ(observer.max_open(), 2);
  EXPECT_GE(observer.waits(), 2);
  EXPECT_EQ(observer.failed_acquires(), 1);
}

TEST_F(MysqlPoolIntegrationTest, KilledSessionIsDiscarded) {
  RecordingObserver observer;
  MysqlOptions options = db_->options();
  options.pool_size = 1;
  std::unique_ptr<MysqlPool> pool = Pool(options, &observer);
  std::unique_ptr<MysqlPool> admin = Pool(db_->options());
  ASSERT_NE(pool, nullptr);
  ASSERT_NE(admin, nullptr);
  const std::string first_id = *Scalar(*pool, "SELECT CONNECTION_ID()");
  ASSERT_TRUE(Exec(*admin, absl::StrCat("KILL ", first_id)).ok());
  // The pool cannot know until it uses the session: that call fails ...
  absl::StatusOr<std::string> failed = Scalar(*pool, "SELECT CONNECTION_ID()");
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable)
      << failed.status();
  EXPECT_EQ(observer.discards(), 1);
  // ... and the next one gets a new session.
  absl::StatusOr<std::string> second_id = Scalar(*pool, "SELECT CONNECTION_ID()");
  ASSERT_TRUE(second_id.ok()) << second_id.status();
  EXPECT_NE(*second_id, first_id);

  // Sessions idle longer than validate_after_idle are checked first, so a
  // killed one is replaced without failing the call.
  options.validate_after_idle = absl::ZeroDuration();
  std::unique_ptr<MysqlPool> checked = Pool(options);
  ASSERT_NE(checked, nullptr);
  const std::string checked_id = *Scalar(*checked, "SELECT CONNECTION_ID()");
  ASSERT_TRUE(Exec(*admin, absl::StrCat("KILL ", checked_id)).ok());
  absl::StatusOr<std::string> replaced = Scalar(*checked, "SELECT CONNECTION_ID()");
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_NE(*replaced, checked_id);
}

TEST_F(MysqlPoolIntegrationTest, StatementCacheIsBounded) {
  MysqlOptions options = db_->options();
  options.pool_size = 1;
  options.max_cached_statements = 8;
  std::unique_ptr<MysqlPool> pool = Pool(options);
  ASSERT_NE(pool, nullptr);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(*Scalar(*pool, absl::StrCat("SELECT ", i)), absl::StrCat(i));
    }
  }
  absl::StatusOr<std::string> closed = pool->Run<std::string>(
      "test.statements", [](MysqlConnection& c) -> absl::StatusOr<std::string> {
        std::unique_ptr<sql::ResultSet> rows(
            c.Prepare("SHOW SESSION STATUS LIKE 'Com_stmt_close'").executeQuery());
        if (!rows->next()) return absl::NotFoundError("no status");
        return rows->getString(2).asStdString();
      });
  ASSERT_TRUE(closed.ok()) << closed.status();
  // 40 statements were prepared on the one session; at most 8 stay open.
  EXPECT_GE(std::stoi(*closed), 40 - 8);
}

TEST_F(MysqlPoolIntegrationTest, UnreachableOrRefused) {
  MysqlOptions options = db_->options();
  options.port = 1;  // nothing listens there
  EXPECT_EQ(MysqlPool::Create(options).status().code(),
            absl::StatusCode::kUnavailable);
  options = db_->options();
  options.password = "wrong password";
  absl::Status denied = MysqlPool::Create(options).status();
  EXPECT_EQ(denied.code(), absl::StatusCode::kInternal);
  EXPECT_NE(denied.message().find("1045"), std::string::npos) << denied;
  EXPECT_EQ(denied.message().find("wrong password"), std::string::npos);
  options = db_->options();
  options.pool_size = 0;
  EXPECT_EQ(MysqlPool::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MysqlPoolIntegrationTest, ObserverSeesNamedOperations) {
  RecordingObserver observer;
  std::unique_ptr<MysqlPool> pool = Pool(db_->options(), &observer);
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(Scalar(*pool, "SELECT 1").ok());
  EXPECT_FALSE(Scalar(*pool, "SELECT nope").ok());
  std::vector<RecordingObserver::Op> ops = observer.operations("test.scalar");
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].code, absl::StatusCode::kOk);
  EXPECT_EQ(ops[1].code, absl::StatusCode::kInternal);
  EXPECT_EQ(ops[0].attempts, 1);
  EXPECT_EQ(observer.acquires(), 3);  // Create's check + two operations
  EXPECT_EQ(observer.max_in_use(), 1);
}

}  // namespace
}  // namespace im::storage::testing
