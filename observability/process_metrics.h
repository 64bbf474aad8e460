#ifndef IM_OBSERVABILITY_PROCESS_METRICS_H_
#define IM_OBSERVABILITY_PROCESS_METRICS_H_

#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace im::observability {

// The standard process_* metrics of Prometheus client libraries, read from
// procfs at scrape time:
//   process_cpu_seconds_total, process_resident_memory_bytes,
//   process_virtual_memory_bytes, process_open_fds, process_max_fds,
//   process_start_time_seconds, process_threads.
// A source that cannot be read leaves its metrics out of that scrape.
class ProcessMetrics : public prometheus::Collectable {
 public:
  struct Options {
    // The process's procfs directory (stat, fd/).
    std::string process_dir = "/proc/self";
    // System-wide stat file (btime: boot time in Unix seconds).
    std::string system_stat = "/proc/stat";
    // Open-files limit for process_max_fds; negative = getrlimit of this
    // process.
    double max_fds = -1;
  };

  ProcessMetrics() : ProcessMetrics(Options()) {}
  explicit ProcessMetrics(Options options);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Options options_;
  const double ticks_per_second_;
  const double page_bytes_;
};

}  // namespace im::observability

#endif  // IM_OBSERVABILITY_PROCESS_METRICS_H_
