#include "tools/imbench/report.h"

#include <cstdio>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace im::imbench {
namespace {

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double value) {
  if (value != value) return "null";  // NaN
  return absl::StrFormat("%.6g", value);
}

}  // namespace

void Report::AddLatency(const std::string& name,
                        const LatencyHistogram& histogram) {
  Latency latency;
  latency.name = name;
  latency.count = histogram.count();
  latency.p50_ms = Ms(histogram.Percentile(0.5));
  latency.p90_ms = Ms(histogram.Percentile(0.9));
  latency.p99_ms = Ms(histogram.Percentile(0.99));
  latency.p999_ms = Ms(histogram.Percentile(0.999));
  latency.max_ms = Ms(histogram.max());
  latency.mean_ms = Ms(histogram.mean());
  latencies.push_back(latency);
}

void Report::PrintTable(std::ostream& out) const {
  std::vector<std::string> parts;
  for (const auto& [key, value] : settings) {
    parts.push_back(absl::StrCat(key, "=", value));
  }
  out << "imbench " << scenario << ": " << absl::StrJoin(parts, " ") << "\n";
  for (const Metric& metric : metrics) {
    out << absl::StrFormat("  %-28s %14.1f %s\n", metric.name, metric.value,
                           metric.unit);
  }
  if (!latencies.empty()) {
    out << absl::StrFormat("  %-20s %9s %9s %9s %9s %9s %9s\n", "latency (ms)",
                           "count", "p50", "p90", "p99", "p99.9", "max");
    for (const Latency& l : latencies) {
      out << absl::StrFormat("  %-20s %9d %9.2f %9.2f %9.2f %9.2f %9.2f\n",
                             l.name, l.count, l.p50_ms, l.p90_ms, l.p99_ms,
                             l.p999_ms, l.max_ms);
    }
  }
  if (errors.empty()) {
    out << "  errors: none\n";
  } else {
    out << "  errors:";
    for (const auto& [kind, count] : errors) out << " " << kind << "=" << count;
    out << "\n";
  }
  if (!verified.empty() || !failures.empty()) {
    out << "  verification: " << (passed() ? "PASS" : "FAIL");
    if (!verified.empty()) out << " (" << verified << ")";
    out << "\n";
    for (const std::string& failure : failures) out << "    " << failure << "\n";
  }
}

void Report::PrintJson(std::ostream& out) const {
  out << "{\"scenario\":" << JsonString(scenario) << ",\"settings\":{";
  for (size_t i = 0; i < settings.size(); ++i) {
    out << (i ? "," : "") << JsonString(settings[i].first) << ":"
        << JsonString(settings[i].second);
  }
  out << "},\"metrics\":{";
  for (size_t i = 0; i < metrics.size(); ++i) {
    out << (i ? "," : "") << JsonString(metrics[i].name) << ":"
        << JsonNumber(metrics[i].value);
  }
  out << "},\"latency_ms\":{";
  for (size_t i = 0; i < latencies.size(); ++i) {
    const Latency& l = latencies[i];
    out << (i ? "," : "") << JsonString(l.name) << ":{\"count\":" << l.count
        << ",\"p50\":" << JsonNumber(l.p50_ms) << ",\"p90\":"
        << JsonNumber(l.p90_ms) << ",\"p99\":" << JsonNumber(l.p99_ms)
        << ",\"p99_9\":" << JsonNumber(l.p999_ms) << ",\"max\":"
        << JsonNumber(l.max_ms) << ",\"mean\":" << JsonNumber(l.mean_ms) << "}";
  }
  out << "},\"errors\":{";
  size_t i = 0;
  for (const auto& [kind, count] : errors) {
    out << (i++ ? "," : "") << JsonString(kind) << ":" << count;
  }
  out << "},\"passed\":" << (passed() ? "true" : "false") << ",\"failures\":[";
  for (size_t j = 0; j < failures.size(); ++j) {
    out << (j ? "," : "") << JsonString(failures[j]);
  }
  out << "]}\n";
}

}  // namespace im::imbench
