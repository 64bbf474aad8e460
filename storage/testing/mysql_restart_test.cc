// Restarts the test MySQL server under a live pool: during the outage every
// call fails with UNAVAILABLE within the configured timeouts, and after it
// the same pool and stores work again, with the log still gap-free.
//
// Needs, besides the IM_TEST_MYSQL_* server variables, shell commands for
// that server (scripts/test provides them):
//   IM_TEST_MYSQL_STOP_CMD   clean shutdown ("scripts/mariadb.sh stop ...")
//   IM_TEST_MYSQL_KILL_CMD   SIGKILL ("scripts/mariadb.sh kill ...")
//   IM_TEST_MYSQL_START_CMD  brings it back and returns once it accepts
//                            connections ("scripts/mariadb.sh start ...")
// The outage is played twice: clean stop, then kill -9 (crash recovery).
// Tagged exclusive: nothing else may use the server meanwhile.

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "storage/mysql/mysql_database.h"
#include "storage/testing/test_database.h"

namespace im::storage::testing {
namespace {

absl::Time Now() { return absl::FromUnixSeconds(1700000000); }

AppendRequest Message(uint64_t conversation_id, uint64_t sender,
                      const std::string& id) {
  AppendRequest r;
  r.conversation_id = conversation_id;
  r.sender_id = sender;
  r.client_msg_id = id;
  r.message.set_text("during restart test");
  return r;
}

TEST(MysqlRestartTest, PoolRidesOutAServerRestart) {
  const char* stop_cmd = std::getenv("IM_TEST_MYSQL_STOP_CMD");
  const char* kill_cmd = std::getenv("IM_TEST_MYSQL_KILL_CMD");
  const char* start_cmd = std::getenv("IM_TEST_MYSQL_START_CMD");
  ASSERT_TRUE(stop_cmd != nullptr && kill_cmd != nullptr &&
              start_cmd != nullptr)
      << "set IM_TEST_MYSQL_STOP_CMD, IM_TEST_MYSQL_KILL_CMD and "
         "IM_TEST_MYSQL_START_CMD (shell commands acting on the test server; "
         "scripts/test sets them), e.g. --test_env=IM_TEST_MYSQL_KILL_CMD="
         "'scripts/mariadb.sh kill --dir DIR' --test_env="
         "IM_TEST_MYSQL_START_CMD='scripts/mariadb.sh start --dir DIR --port "
         "PORT'";
  std::unique_ptr<TestDatabase> test_db = TestDatabase::CreateOrFail();
  ASSERT_NE(test_db, nullptr);

  MysqlOptions options = test_db->options();
  options.pool_size = 4;
  options.acquire_timeout = absl::Seconds(1);
  options.connect_timeout = absl::Seconds(1);
  options.read_timeout = absl::Seconds(2);
  options.write_timeout = absl::Seconds(2);
  // The most one call may take while the server is away.
  const absl::Duration bound = options.acquire_timeout +
                               options.connect_timeout + options.read_timeout +
                               absl::Seconds(3);
  absl::StatusOr<std::unique_ptr<MysqlDatabase>> db =
      MysqlDatabase::Create(options);
  ASSERT_TRUE(db.ok()) << db.status();

  NewUser alice;
  alice.username = alice.username_norm = alice.display_name = "alice";
  alice.created_at = Now();
  absl::StatusOr<UserRecord> user = (*db)->users()->CreateUser(alice);
  ASSERT_TRUE(user.ok()) << user.status();
  absl::StatusOr<MemberChange> group =
      (*db)->log()->CreateGroup(user->id, "g", {}, 0, "", Now());
  ASSERT_TRUE(group.ok()) << group.status();
  const uint64_t g = group->conversation.id;
  // Warm several sessions so stale ones sit in the pool during the outage.
  std::vector<AppendRequest> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(Message(g, user->id, absl::StrCat("before-", i)));
  ASSERT_TRUE((*db)->log()->AppendMessages(batch, Now()).ok());

  uint64_t last_seq = 5;
  int round = 0;
  for (const char* down_cmd : {stop_cmd, kill_cmd}) {
    ++round;
    SCOPED_TRACE(down_cmd);
    ASSERT_EQ(std::system(down_cmd), 0) << down_cmd;

    for (int i = 0; i < 6; ++i) {
      const absl::Time start = absl::Now();
      absl::Status status =
          i % 2 == 0 ? (*db)->users()->GetUser(user->id).status()
                     : (*db)->log()
                           ->AppendMessages(
                               {Message(g, user->id,
                                        absl::StrCat("during-", round, "-", i))},
                               Now())
                           .status();
      const absl::Duration took = absl::Now() - start;
      EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable)
          << i << ": " << status;
      EXPECT_LT(took, bound) << "call " << i << " hung for " << took;
    }

    ASSERT_EQ(std::system(start_cmd), 0) << start_cmd;

    // The same pool works again at once.
    absl::StatusOr<UserRecord> again = (*db)->users()->GetUser(user->id);
    EXPECT_TRUE(again.ok()) << again.status();
    absl::StatusOr<std::vector<AppendOutcome>> after =
        (*db)->log()->AppendMessages(
            {Message(g, user->id, absl::StrCat("after-", round, "-0")),
             Message(g, user->id, absl::StrCat("after-", round, "-1"))},
            Now());
    ASSERT_TRUE(after.ok()) << after.status();
    ASSERT_TRUE((*after)[0].status.ok()) << (*after)[0].status;
    EXPECT_EQ((*after)[0].entry.seq(), last_seq + 1);
    EXPECT_EQ((*after)[1].entry.seq(), last_seq + 2);
    last_seq += 2;
  }
  // Every acknowledged entry survived, gap-free.
  absl::StatusOr<std::vector<Entry>> all =
      (*db)->reader()->ReadAfter(g, 0, UINT64_MAX, 100);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), last_seq);
  for (size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].seq(), i + 1);
  // Several sessions can be opened again.
  std::vector<MysqlPool::Lease> leases;
  for (int i = 0; i < options.pool_size; ++i) {
    absl::StatusOr<MysqlPool::Lease> lease = (*db)->pool()->Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    leases.push_back(*std::move(lease));
  }
}

}  // namespace
}  // namespace im::storage::testing
