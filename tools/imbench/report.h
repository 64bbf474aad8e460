#ifndef IM_TOOLS_IMBENCH_REPORT_H_
#define IM_TOOLS_IMBENCH_REPORT_H_

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tools/imbench/latency_histogram.h"

namespace im::imbench {

// What one scenario run found, printed as a table or as JSON.
struct Report {
  struct Latency {
    std::string name;
    uint64_t count = 0;
    double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0,
           mean_ms = 0;
  };

  std::string scenario;
  // Settings and headline, in order ("users" -> "100").
  std::vector<std::pair<std::string, std::string>> settings;
  // Measured numbers in order ("acked_per_second" -> 998.1), with a unit
  // for the table.
  struct Metric {
    std::string name;
    double value = 0;
    std::string unit;
  };
  std::vector<Metric> metrics;
  std::vector<Latency> latencies;
  // Errors by kind (a gRPC code name, or what failed).
  std::map<std::string, uint64_t> errors;
  // Verification: empty = passed.
  std::vector<std::string> failures;
  // What the verification checked, for the table.
  std::string verified;

  void Set(const std::string& key, const std::string& value) {
    settings.emplace_back(key, value);
  }
  void Add(const std::string& name, double value, const std::string& unit = "") {
    metrics.push_back({name, value, unit});
  }
  void AddLatency(const std::string& name, const LatencyHistogram& histogram);
  void AddError(const std::string& kind, uint64_t count = 1) {
    if (count > 0) errors[kind] += count;
  }
  bool passed() const { return failures.empty(); }

  void PrintTable(std::ostream& out) const;
  void PrintJson(std::ostream& out) const;
};

}  // namespace im::imbench

#endif  // IM_TOOLS_IMBENCH_REPORT_H_
