#include "observability/process_metrics.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "observability/metric_reader.h"

namespace im::observability {
namespace {

// A fake procfs: <dir>/stat, <dir>/fd/ and a system stat file.
class FakeProc {
 public:
  FakeProc() {
    std::string pattern = absl::StrCat(::testing::TempDir(), "/procXXXXXX");
    dir_ = mkdtemp(pattern.data());
    mkdir((dir_ + "/fd").c_str(), 0755);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  ProcessMetrics::Options Options() const {
    ProcessMetrics::Options options;
    options.process_dir = dir_;
    options.system_stat = dir_ + "/system_stat";
    options.max_fds = 1024;
    return options;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

TEST(ProcessMetricsTest, ReadsStatFields) {
  FakeProc proc;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // proc(5) fields 1..24; comm holds spaces and parentheses. utime (14) =
  // 3 s, stime (15) = 1.5 s, threads (20) = 7, starttime (22) = 20 s after
  // boot, vsize (23) = 123456789, rss (24) = 250 pages.
  proc.Write(
      "stat",
      absl::StrCat("42 (im (main) x) S 1 42 42 0 -1 4194560 100 0 0 0 ",
                   3 * ticks, " ", 1.5 * ticks, " 0 0 20 0 7 0 ", 20 * ticks,
                   " 123456789 250 18446744073709551615 1 1\n"));
  proc.Write("system_stat", "cpu  1 2 3 4\nbtime 1700000000\nprocesses 9\n");
  for (const char* fd : {"0", "1", "2", "5"})
    proc.Write(absl::StrCat("fd/", fd), "");

  ProcessMetrics metrics(proc.Options());
  EXPECT_DOUBLE_EQ(*FindSample(metrics, "process_cpu_seconds_total"), 4.5);
  EXPECT_DOUBLE_EQ(*FindSample(metrics, "process_threads"), 7);
  EXPECT_DOUBLE_EQ(*FindSample(metrics, "process_start_time_seconds"),
                   1700000020);
  EXPECT_DOUBLE_EQ(*FindSample(metrics, "process_virtual_memory_bytes"),
                   123456789);
  EXPECT_DOUBLE_EQ(*FindSample(metrics, "process_resident_memory_bytes"),
                   250 * page);
  EXPECT_DOUBLE_EQ(*FindSample(metrics, "process_open_fds"), 4);
  EXPECT_DOUBLE_EQ(*FindSample(metrics, "process_max_fds"), 1024);
}

TEST(ProcessMetricsTest, UnreadableSourcesAreLeftOut) {
  FakeProc proc;
  proc.Write("stat", "garbage without a command\n");
  ProcessMetrics::Options options = proc.Options();
  options.process_dir = proc.dir() + "/missing";
  ProcessMetrics metrics(options);
  EXPECT_FALSE(FindSample(metrics, "process_cpu_seconds_total").has_value());
  EXPECT_FALSE(FindSample(metrics, "process_open_fds").has_value());
  EXPECT_DOUBLE_EQ(*FindSample(metrics, "process_max_fds"), 1024);

  ProcessMetrics garbled(proc.Options());
  EXPECT_FALSE(FindSample(garbled, "process_cpu_seconds_total").has_value());
  EXPECT_FALSE(FindSample(garbled, "process_threads").has_value());
}

TEST(ProcessMetricsTest, CountsThisProcessesOpenFiles) {
  ProcessMetrics metrics;
  const double before = *FindSample(metrics, "process_open_fds");
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(open("/dev/null", O_RDONLY));
  EXPECT_EQ(*FindSample(metrics, "process_open_fds"), before + 5);
  for (int fd : fds) close(fd);
  EXPECT_EQ(*FindSample(metrics, "process_open_fds"), before);
  EXPECT_GE(*FindSample(metrics, "process_threads"), 1);
  EXPECT_GT(*FindSample(metrics, "process_resident_memory_bytes"), 0);
  EXPECT_GT(*FindSample(metrics, "process_start_time_seconds"), 1.6e9);
}

}  // namespace
}  // namespace im::observability
