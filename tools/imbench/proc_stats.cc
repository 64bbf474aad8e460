#include "tools/imbench/proc_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace im::imbench {

absl::StatusOr<uint64_t> ReadRssBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  if (!in) return absl::NotFoundError(absl::StrCat("no process ", pid));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, "kB");
    uint64_t kib = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kib)) {
      return kib * 1024;
    }
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS for process ", pid));
}

namespace {

// Socket inodes listening on `port` in one /proc/net/tcp* table.
std::vector<std::string> ListeningInodes(const std::string& table, int port) {
  std::vector<std::string> inodes;
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 10 || fields[3] != "0A") continue;  // 0A = LISTEN
    const size_t colon = fields[1].rfind(':');
    if (colon == std::string::npos) continue;
    int local_port = 0;
    if (!absl::SimpleHexAtoi(fields[1].substr(colon + 1), &local_port)) continue;
    if (local_port == port) inodes.push_back(fields[9]);
  }
  return inodes;
}

}  // namespace

absl::StatusOr<pid_t> FindListeningPid(int port) {
  std::vector<std::string> inodes = ListeningInodes("/proc/net/tcp", port);
  for (std::string& inode : ListeningInodes("/proc/net/tcp6", port)) {
    inodes.push_back(std::move(inode));
  }
  if (inodes.empty()) {
    return absl::NotFoundError(absl::StrCat("nothing listens on port ", port));
  }
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return absl::InternalError("cannot read /proc");
  pid_t found = 0;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr) continue;
    while (dirent* fd = readdir(fds)) {
      char target[128] = {};
      const std::string link = absl::StrCat(fd_dir, "/", fd->d_name);
      const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      const std::string socket(target, static_cast<size_t>(n));
      for (const std::string& inode : inodes) {
        if (socket == absl::StrCat("socket:[", inode, "]")) found = pid;
      }
      if (found != 0) break;
    }
    closedir(fds);
    if (found != 0) break;
  }
  closedir(proc);
  if (found == 0) {
    return absl::NotFoundError(
        absl::StrCat("the process listening on port ", port,
                     " is not visible (run as its user, or pass --server_pid)"));
  }
  return found;
}

std::array<double, 3> LoadAverage() {
  std::array<double, 3> load = {0, 0, 0};
  std::ifstream in("/proc/loadavg");
  in >> load[0] >> load[1] >> load[2];
  return load;
}

int PortOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return 0;
  }
  return port;
}

}  // namespace im::imbench
