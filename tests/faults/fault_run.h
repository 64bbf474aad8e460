#ifndef IM_TESTS_FAULTS_FAULT_RUN_H_
#define IM_TESTS_FAULTS_FAULT_RUN_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/faults/fault_schedule.h"

// One seeded fault run: the real services under supervision, clients
// sending through the client library while the schedule injects faults,
// then healing, catching up, paging every history and checking.

namespace im::faults {

struct FaultRunOptions {
  uint64_t seed = 1;
  // The fault phase; load runs through it, plus warm-up and cool-down.
  absl::Duration duration = absl::Seconds(30);
  absl::Duration warmup = absl::Seconds(3);
  absl::Duration cooldown = absl::Seconds(2);
  int users = 4;
  double sends_per_second_per_user = 10;
  // Share of sends made with unary Send (one attempt, short deadline:
  // outcomes can stay unknown) instead of the Chat session.
  double unary_fraction = 0.15;
  std::vector<FaultKind> faults;
  // Fail on a sender's stream sends stored out of submission order. The
  // client library retries a transiently refused send on its own after a
  // backoff while later sends go ahead, so this does not hold yet (see
  // README.md); false reports the count without failing.
  bool require_sender_order = true;
  // auth, presence, message, history binaries (by testing::Service).
  std::array<std::string, 4> binaries;
  // This binary, for the consumer process (--role=consumer).
  std::string harness_binary;
  // A database the services may migrate.
  std::string mysql_dsn;
  // `sh -c` commands on that MariaDB (scripts/mariadb.sh start/stop/kill).
  std::string mysql_start_cmd;
  std::string mysql_stop_cmd;
  std::string mysql_kill_cmd;
  // Service logs and the consumer's log.
  std::string work_dir;
  // Bound of each wait after healing (services SERVING, sessions live,
  // sends settled, catch-up).
  absl::Duration recovery_timeout = absl::Seconds(60);
};

// Runs it, prints the summary table; 0 when nothing acknowledged was lost
// or duplicated and everything else held (see README.md), 1 otherwise.
int RunFaultRun(const FaultRunOptions& options);

}  // namespace im::faults

#endif  // IM_TESTS_FAULTS_FAULT_RUN_H_
