#include "observability/metric_reader.h"

#include <functional>
#include <string>
#include <vector>

#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"
#include "prometheus/metric_type.h"

namespace im::observability {
namespace {

// Calls `visit(labels, value)` for every series of the sample `name`.
void VisitSamples(
    const prometheus::Collectable& source, absl::string_view name,
    const std::function<void(const prometheus::Labels&, double)>& visit) {
  for (const prometheus::MetricFamily& family : source.Collect()) {
    enum { kValue, kCount, kSum } part;
    if (family.name == name) {
      part = kValue;
    } else if (family.type == prometheus::MetricType::Histogram &&
               family.name + "_count" == name) {
      part = kCount;
    } else if (family.type == prometheus::MetricType::Histogram &&
               family.name + "_sum" == name) {
      part = kSum;
    } else {
      continue;
    }
    for (const prometheus::ClientMetric& metric : family.metric) {
      prometheus::Labels labels;
      for (const auto& label : metric.label) labels[label.name] = label.value;
      double value = 0;
      switch (part) {
        case kCount:
          value = static_cast<double>(metric.histogram.sample_count);
          break;
        case kSum:
          value = metric.histogram.sample_sum;
          break;
        case kValue:
          switch (family.type) {
            case prometheus::MetricType::Counter:
              value = metric.counter.value;
              break;
            case prometheus::MetricType::Gauge:
              value = metric.gauge.value;
              break;
            case prometheus::MetricType::Untyped:
              value = metric.untyped.value;
              break;
            case prometheus::MetricType::Histogram:
              value = static_cast<double>(metric.histogram.sample_count);
              break;
            case prometheus::MetricType::Summary:
              value = static_cast<double>(metric.summary.sample_count);
              break;
          }
          break;
      }
      visit(labels, value);
    }
  }
}

}  // namespace

std::optional<double> FindSample(const prometheus::Collectable& source,
                                 absl::string_view name,
                                 const prometheus::Labels& labels) {
  std::optional<double> found;
  VisitSamples(source, name,
               [&](const prometheus::Labels& series, double value) {
                 if (series == labels) found = value;
               });
  return found;
}

double SumSamples(const prometheus::Collectable& source, absl::string_view name,
                  const prometheus::Labels& labels) {
  double sum = 0;
  VisitSamples(source, name,
               [&](const prometheus::Labels& series, double value) {
                 for (const auto& [key, wanted] : labels) {
                   auto it = series.find(key);
                   if (it == series.end() || it->second != wanted) return;
                 }
                 sum += value;
               });
  return sum;
}

}  // namespace im::observability
