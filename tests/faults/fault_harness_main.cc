// The fault harness (see tests/faults/README.md). Normally started by
// tests/faults/run_faults.sh, which owns MariaDB; by hand:
//
//   fault_harness --seed=1 --duration=30s --bin_dir=bazel-bin/services
//     --mysql_dsn=mysql://im:im@127.0.0.1:13315/faults_1
//     --mysql_start_cmd='scripts/mariadb.sh start --dir D --port 13315'
//     --mysql_stop_cmd='scripts/mariadb.sh stop --dir D'
//     --mysql_kill_cmd='scripts/mariadb.sh kill --dir D' --work_dir=/tmp/f1
//
// Exit status 0: nothing acknowledged was lost or duplicated and every
// other check held; 1 otherwise; 2 for bad flags.

#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"
#include "tests/faults/fault_run.h"
#include "tests/faults/stalled_consumer.h"

ABSL_FLAG(uint64_t, seed, 1, "Seed of the fault schedule and the load");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(30),
          "Length of the fault phase (load runs through it)");
ABSL_FLAG(int, users, 4, "Users, each with a live session (2-8)");
ABSL_FLAG(double, rate, 10, "Sends per second per user");
ABSL_FLAG(double, unary_fraction, 0.15,
          "Share of sends made with unary Send instead of the session");
ABSL_FLAG(std::string, faults, "all",
          "Comma-separated fault kinds (see fault_schedule.h) or all");
ABSL_FLAG(std::string, bin_dir, "",
          "Directory with auth/auth_main, presence/presence_main, "
          "message/message_main, history/history_main (bazel-bin/services)");
ABSL_FLAG(std::string, mysql_dsn, "", "Database the services use");
ABSL_FLAG(std::string, mysql_start_cmd, "", "sh -c command starting MariaDB");
ABSL_FLAG(std::string, mysql_stop_cmd, "", "sh -c command stopping it cleanly");
ABSL_FLAG(std::string, mysql_kill_cmd, "", "sh -c command killing it (-9)");
ABSL_FLAG(bool, require_sender_order, true,
          "Fail when a sender's stream sends are stored out of order "
          "(false: report only)");
ABSL_FLAG(std::string, work_dir, "/tmp/im-faults", "Logs go here");
ABSL_FLAG(std::string, role, "harness", "harness, or consumer (internal)");
ABSL_FLAG(std::string, consumer_username, "", "internal");
ABSL_FLAG(std::string, consumer_password, "", "internal");
ABSL_FLAG(std::string, consumer_auth, "", "internal");
ABSL_FLAG(std::string, consumer_message, "", "internal");
ABSL_FLAG(std::string, consumer_history, "", "internal");

namespace {

std::string SelfPath() {
  char path[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  if (absl::GetFlag(FLAGS_role) == "consumer") {
    im::faults::ConsumerConfig config;
    config.username = absl::GetFlag(FLAGS_consumer_username);
    config.password = absl::GetFlag(FLAGS_consumer_password);
    config.auth_address = absl::GetFlag(FLAGS_consumer_auth);
    config.message_address = absl::GetFlag(FLAGS_consumer_message);
    config.history_address = absl::GetFlag(FLAGS_consumer_history);
    return im::faults::RunConsumerProcess(config);
  }
  im::faults::FaultRunOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.users = absl::GetFlag(FLAGS_users);
  options.sends_per_second_per_user = absl::GetFlag(FLAGS_rate);
  options.unary_fraction = absl::GetFlag(FLAGS_unary_fraction);
  absl::StatusOr<std::vector<im::faults::FaultKind>> faults =
      im::faults::ParseFaultKinds(absl::GetFlag(FLAGS_faults));
  const std::string bin_dir = absl::GetFlag(FLAGS_bin_dir);
  options.mysql_dsn = absl::GetFlag(FLAGS_mysql_dsn);
  if (!faults.ok() || bin_dir.empty() || options.mysql_dsn.empty() ||
      options.users < 2 || options.users > 8 ||
      options.sends_per_second_per_user <= 0) {
    std::fprintf(stderr,
                 "fault_harness: need --bin_dir, --mysql_dsn, 2-8 --users, a "
                 "positive --rate and known --faults%s\n",
                 faults.ok() ? ""
                             : (": " + faults.status().ToString()).c_str());
    return 2;
  }
  options.faults = *faults;
  int i = 0;
  for (const char* name : {"auth", "presence", "message", "history"}) {
    options.binaries[i++] = absl::StrCat(bin_dir, "/", name, "/", name, "_main");
  }
  options.harness_binary = SelfPath();
  options.mysql_start_cmd = absl::GetFlag(FLAGS_mysql_start_cmd);
  options.mysql_stop_cmd = absl::GetFlag(FLAGS_mysql_stop_cmd);
  options.mysql_kill_cmd = absl::GetFlag(FLAGS_mysql_kill_cmd);
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  options.require_sender_order = absl::GetFlag(FLAGS_require_sender_order);
  return im::faults::RunFaultRun(options);
}
