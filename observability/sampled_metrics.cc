#include "observability/sampled_metrics.h"

#include <utility>

#include "prometheus/client_metric.h"

namespace im::observability {

void SampledMetrics::AddGauge(std::string name, std::string help, Read read) {
  absl::MutexLock lock(&mu_);
  sampled_.push_back({std::move(name), std::move(help),
                      prometheus::MetricType::Gauge, std::move(read)});
}

void SampledMetrics::AddCounter(std::string name, std::string help, Read read) {
  absl::MutexLock lock(&mu_);
  sampled_.push_back({std::move(name), std::move(help),
                      prometheus::MetricType::Counter, std::move(read)});
}

std::vector<prometheus::MetricFamily> SampledMetrics::Collect() const {
  absl::MutexLock lock(&mu_);
  std::vector<prometheus::MetricFamily> families;
  families.reserve(sampled_.size());
  for (const Sampled& sampled : sampled_) {
    prometheus::MetricFamily family;
    family.name = sampled.name;
    family.help = sampled.help;
    family.type = sampled.type;
    prometheus::ClientMetric metric;
    const double value = sampled.read();
    if (sampled.type == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
    families.push_back(std::move(family));
  }
  return families;
}

}  // namespace im::observability
