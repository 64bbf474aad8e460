#ifndef IM_TOOLS_IMBENCH_PROC_STATS_H_
#define IM_TOOLS_IMBENCH_PROC_STATS_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace im::imbench {

// Resident set size of process `pid` (VmRSS in /proc/<pid>/status).
absl::StatusOr<uint64_t> ReadRssBytes(pid_t pid);

// The process listening on TCP `port` (IPv4 or IPv6), found through
// /proc/net/tcp{,6} and the processes' socket fds. NOT_FOUND when none is
// visible to this user.
absl::StatusOr<pid_t> FindListeningPid(int port);

// The 1, 5 and 15 minute load averages (/proc/loadavg).
std::array<double, 3> LoadAverage();

// The port of "host:port"; 0 when there is none.
int PortOf(const std::string& address);

}  // namespace im::imbench

#endif  // IM_TOOLS_IMBENCH_PROC_STATS_H_
