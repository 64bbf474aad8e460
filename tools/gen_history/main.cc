// Fills a migrated, empty database with a synthetic conversation log for
// the history benchmark:
//
//   bazel run //storage:migrate_main -- --create_database
//       --mysql_dsn=mysql://im:im@127.0.0.1:13309/history_bench
//   bazel run //tools/gen_history --
//       --mysql_dsn=mysql://im:im@127.0.0.1:13309/history_bench
//
// Defaults: 10,000,000 messages in 10,000 conversations among 20,000
// users; user "bench-heavy" is in 1,000 of them, including the 10 biggest
// (500,000 messages each). Prints timings; exit status 1 on any error.

#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "storage/mysql/mysql_database.h"
#include "storage/mysql/mysql_options.h"
#include "tools/gen_history/history_generator.h"

ABSL_FLAG(std::string, mysql_dsn, "",
          "mysql://USER:PASSWORD@HOST:PORT/DATABASE of a migrated, empty "
          "database");
ABSL_FLAG(uint32_t, users, 20000, "users to create");
ABSL_FLAG(uint32_t, conversations, 10000, "conversations to create");
ABSL_FLAG(uint64_t, messages, 10000000, "messages to append in all");
ABSL_FLAG(uint32_t, heavy_user_conversations, 1000,
          "conversations of the user named bench-heavy");
ABSL_FLAG(uint32_t, big_conversations, 10,
          "conversations that share --big_share of the messages");
ABSL_FLAG(double, big_share, 0.5, "share of messages in the big ones");
ABSL_FLAG(uint32_t, batch_size, 500, "messages per AppendMessages call");
ABSL_FLAG(uint32_t, threads, 4, "writer threads");
ABSL_FLAG(uint64_t, seed, 1, "random seed (same seed, same plan)");

namespace im::tools {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "gen_history: %s\n", status.ToString().c_str());
  return 1;
}

int Run() {
  absl::StatusOr<storage::MysqlOptions> mysql =
      storage::ParseMysqlDsn(absl::GetFlag(FLAGS_mysql_dsn));
  if (!mysql.ok()) return Fail(mysql.status());
  HistoryGeneratorOptions options;
  options.users = absl::GetFlag(FLAGS_users);
  options.conversations = absl::GetFlag(FLAGS_conversations);
  options.messages = absl::GetFlag(FLAGS_messages);
  options.heavy_user_conversations =
      absl::GetFlag(FLAGS_heavy_user_conversations);
  options.big_conversations = absl::GetFlag(FLAGS_big_conversations);
  options.big_share = absl::GetFlag(FLAGS_big_share);
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.progress = [](const std::string& line) {
    std::printf("%s  %s\n",
                absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone())
                    .c_str(),
                line.c_str());
    std::fflush(stdout);
  };
  mysql->pool_size = static_cast<int>(options.threads) + 1;

  absl::StatusOr<std::unique_ptr<storage::MysqlDatabase>> db =
      storage::MysqlDatabase::Create(*mysql);
  if (!db.ok()) return Fail(db.status());
  const absl::Time start = absl::Now();
  absl::StatusOr<HistoryGeneratorResult> result =
      GenerateHistory(options, db->get());
  if (!result.ok()) return Fail(result.status());
  const absl::Duration total = absl::Now() - start;
  absl::PrintF(
      "generated into %s\n"
      "  users          %8d in %s\n"
      "  conversations  %8d (%d memberships) in %s\n"
      "  messages       %8d in %s (%.0f messages/s)\n"
      "  total          %s\n"
      "  heavy user     id %d (%s), in %d conversations\n"
      "  deepest        conversation %d, last_seq %d\n",
      storage::RedactedMysqlDsn(*mysql), result->users,
      absl::FormatDuration(result->users_time), result->conversations,
      result->memberships, absl::FormatDuration(result->conversations_time),
      result->messages, absl::FormatDuration(result->messages_time),
      static_cast<double>(result->messages) /
          absl::ToDoubleSeconds(result->messages_time),
      absl::FormatDuration(total), result->heavy_user_id, kHeavyUsername,
      options.heavy_user_conversations, result->deepest_conversation_id,
      result->deepest_last_seq);
  return 0;
}

}  // namespace
}  // namespace im::tools

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return im::tools::Run();
}
