// Throughput of ConversationLog::AppendMessages (the message service's group
// commit) against MariaDB, at batch sizes 1, 16 and 128, from 1 and 4
// threads. Not a test; run it by hand against a server of your own:
//
//   export IM_TEST_MYSQL_HOST=127.0.0.1 IM_TEST_MYSQL_PORT=13306
//   export IM_TEST_MYSQL_USER=im IM_TEST_MYSQL_PASSWORD=im
//   bazel run -c opt //storage/testing:append_messages_benchmark
//
// items_per_second is stored messages (rows) per second; every batch is one
// durable commit.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "storage/mysql/mysql_database.h"
#include "storage/testing/test_database.h"

namespace im::storage::testing {
namespace {

constexpr int kUsers = 64;
constexpr int kConversations = 32;

struct Fixture {
  std::unique_ptr<TestDatabase> test_db;
  std::unique_ptr<MysqlDatabase> db;
  std::vector<uint64_t> users;
  std::vector<uint64_t> conversations;
};

// Built once, on first use; the database is dropped at exit.
Fixture& GetFixture() {
  static Fixture* const fixture = [] {
    auto* f = new Fixture;
    TestDatabaseOptions test_options;
    test_options.pool_size = 8;
    absl::StatusOr<std::unique_ptr<TestDatabase>> test_db =
        TestDatabase::Create(test_options);
    if (!test_db.ok()) {
      std::fprintf(stderr, "%s\n", test_db.status().ToString().c_str());
      std::exit(1);
    }
    f->test_db = *std::move(test_db);
    MysqlOptions options = f->test_db->options();
    options.pool_size = 8;
    absl::StatusOr<std::unique_ptr<MysqlDatabase>> db =
        MysqlDatabase::Create(options);
    if (!db.ok()) {
      std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
      std::exit(1);
    }
    f->db = *std::move(db);
    for (int i = 0; i < kUsers; ++i) {
      NewUser user;
      user.username = user.username_norm = user.display_name =
          absl::StrCat("bench", i);
      user.created_at = absl::Now();
      f->users.push_back(f->db->users()->CreateUser(user)->id);
    }
    for (int i = 0; i < kConversations; ++i) {
      f->conversations.push_back(
          f->db->log()
              ->CreateGroup(f->users[0], absl::StrCat("g", i), f->users, 0, "",
                            absl::Now())
              ->conversation.id);
    }
    std::atexit([] {
      GetFixture().db.reset();
      GetFixture().test_db.reset();
    });
    return f;
  }();
  return *fixture;
}

void BM_AppendMessages(benchmark::State& state) {
  Fixture& f = GetFixture();
  const int batch_size = static_cast<int>(state.range(0));
  static std::atomic<uint64_t> next_id{0};
  const std::string text(100, 'x');  // a typical short message
  std::vector<AppendRequest> batch(batch_size);
  int64_t stored = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch_size; ++i) {
      const uint64_t n = next_id.fetch_add(1);
      AppendRequest& r = batch[i];
      r.conversation_id = f.conversations[n % kConversations];
      r.sender_id = f.users[n % kUsers];
      r.client_msg_id = absl::StrCat("b", n);
      r.message.set_text(text);
    }
    absl::StatusOr<std::vector<AppendOutcome>> out =
        f.db->log()->AppendMessages(batch, absl::Now());
    if (!out.ok()) {
      state.SkipWithError(out.status().ToString().c_str());
      break;
    }
    for (const AppendOutcome& o : *out) {
      if (o.status.ok() && !o.duplicate) ++stored;
    }
  }
  state.SetItemsProcessed(stored);
  state.counters["batch"] = batch_size;
}

BENCHMARK(BM_AppendMessages)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->Threads(1)
    ->Threads(4)
    ->UseRealTime()
    ->MinTime(3.0);

}  // namespace
}  // namespace im::storage::testing
