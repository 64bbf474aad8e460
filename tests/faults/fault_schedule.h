#ifndef IM_TESTS_FAULTS_FAULT_SCHEDULE_H_
#define IM_TESTS_FAULTS_FAULT_SCHEDULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Which faults a run injects, and when: a pure function of the seed, so a
// failing run can be repeated with the same schedule.

namespace im::faults {

enum class FaultKind {
  kKillMessage = 0,  // kill -9; the supervisor restarts it after `hold`
  kKillHistory,
  kKillPresence,
  kKillAuth,
  kMysqlRestart,     // clean stop, down for `hold`, start
  kMysqlKill,        // kill -9, down for `hold`, start (crash recovery)
  kDropStreams,      // `count` random clients' streams end at once
  kStallConsumer,    // the consumer process SIGSTOP'd for `hold`
  kProxyReset,       // every connection through the proxy reset
  kProxyBlackhole,   // answers swallowed for `hold`, then a reset
  kCount,
};

const char* FaultKindName(FaultKind kind);
// Parses a comma-separated list of names ("all" = every kind).
absl::StatusOr<std::vector<FaultKind>> ParseFaultKinds(const std::string& list);

struct Fault {
  absl::Duration at;    // from the start of the fault phase
  FaultKind kind = FaultKind::kCount;
  absl::Duration hold;  // how long the fault lasts (0 = instant)
  int count = 0;        // kDropStreams only
};

// Every enabled kind at least once, in a seeded order spread over
// `duration`, then more at random until the phase is full. Faults that act
// on the same thing (MariaDB; the proxy; the consumer; one service) never
// overlap; the last one ends before `duration`.
std::vector<Fault> MakeSchedule(uint64_t seed, absl::Duration duration,
                                const std::vector<FaultKind>& enabled);

std::string DescribeFault(const Fault& fault);

}  // namespace im::faults

#endif  // IM_TESTS_FAULTS_FAULT_SCHEDULE_H_
