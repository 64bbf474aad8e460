#include "observability/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"

namespace im::observability {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The fields of /proc/<pid>/stat after "(comm)", so fields()[0] is field 3
// (state) of proc(5). comm may hold spaces and parentheses; it ends at the
// last ')'.
std::vector<absl::string_view> StatFields(absl::string_view stat) {
  const size_t close = stat.rfind(')');
  if (close == absl::string_view::npos) return {};
  return absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipWhitespace());
}

// proc(5) field number `n` (1-based) from StatFields().
std::optional<double> StatField(const std::vector<absl::string_view>& fields,
                                int n) {
  const size_t index = n - 3;
  double value = 0;
  if (index >= fields.size() || !absl::SimpleAtod(fields[index], &value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> BootTime(const std::string& system_stat) {
  std::optional<std::string> text = ReadFile(system_stat);
  if (!text) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> words =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    double value = 0;
    if (words.size() == 2 && words[0] == "btime" &&
        absl::SimpleAtod(words[1], &value)) {
      return value;
    }
  }
  return std::nullopt;
}

std::optional<double> CountOpenFds(const std::string& fd_dir) {
  DIR* dir = opendir(fd_dir.c_str());
  if (dir == nullptr) return std::nullopt;
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    const absl::string_view name = entry->d_name;
    if (name != "." && name != "..") ++count;
  }
  closedir(dir);
  // Like other client libraries, the count includes the descriptor that
  // read the directory.
  return count;
}

prometheus::MetricFamily Single(std::string name, std::string help,
                                prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

}  // namespace

ProcessMetrics::ProcessMetrics(Options options)
    : options_(std::move(options)),
      ticks_per_second_(static_cast<double>(sysconf(_SC_CLK_TCK))),
      page_bytes_(static_cast<double>(sysconf(_SC_PAGESIZE))) {}

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;

  if (std::optional<std::string> stat =
          ReadFile(options_.process_dir + "/stat")) {
    const std::vector<absl::string_view> fields = StatFields(*stat);
    const std::optional<double> utime = StatField(fields, 14);
    const std::optional<double> stime = StatField(fields, 15);
    const std::optional<double> threads = StatField(fields, 20);
    const std::optional<double> start_ticks = StatField(fields, 22);
    const std::optional<double> vsize = StatField(fields, 23);
    const std::optional<double> rss_pages = StatField(fields, 24);
    if (utime && stime) {
      families.push_back(Single("process_cpu_seconds_total",
                                "User and system CPU time spent, in seconds.",
                                MetricType::Counter,
                                (*utime + *stime) / ticks_per_second_));
    }
    if (rss_pages) {
      families.push_back(Single("process_resident_memory_bytes",
                                "Resident memory size in bytes.",
                                MetricType::Gauge, *rss_pages * page_bytes_));
    }
    if (vsize) {
      families.push_back(Single("process_virtual_memory_bytes",
                                "Virtual memory size in bytes.",
                                MetricType::Gauge, *vsize));
    }
    if (threads) {
      families.push_back(Single("process_threads", "OS threads in the process.",
                                MetricType::Gauge, *threads));
    }
    std::optional<double> boot = BootTime(options_.system_stat);
    if (start_ticks && boot) {
      families.push_back(
          Single("process_start_time_seconds",
                 "Start time of the process since the Unix epoch, in seconds.",
                 MetricType::Gauge, *boot + *start_ticks / ticks_per_second_));
    }
  }

  if (std::optional<double> open_fds =
          CountOpenFds(options_.process_dir + "/fd")) {
    families.push_back(Single("process_open_fds", "Open file descriptors.",
                              MetricType::Gauge, *open_fds));
  }

  double max_fds = options_.max_fds;
  if (max_fds < 0) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      max_fds = limit.rlim_cur == RLIM_INFINITY
                    ? -1
                    : static_cast<double>(limit.rlim_cur);
    }
  }
  if (max_fds >= 0) {
    families.push_back(Single("process_max_fds",
                              "Limit on open file descriptors.",
                              MetricType::Gauge, max_fds));
  }
  return families;
}

}  // namespace im::observability
