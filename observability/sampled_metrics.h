#ifndef IM_OBSERVABILITY_SAMPLED_METRICS_H_
#define IM_OBSERVABILITY_SAMPLED_METRICS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/metric_type.h"

namespace im::observability {

// Metrics whose values are read from a component's state at scrape time
// (a gauge of open streams, a counter the component already keeps), so the
// component's hot paths need no metrics code. Register one with
// ServerMetrics::AddCollectable. The read functions run on the scraping
// thread and must be thread-safe; they must stay valid while the object
// is served (the service host stops serving before it destroys the
// service). Adding is thread-safe; an unlabelled metric only.
class SampledMetrics : public prometheus::Collectable {
 public:
  using Read = std::function<double()>;

  void AddGauge(std::string name, std::string help, Read read);
  // `read` must never decrease (a running total).
  void AddCounter(std::string name, std::string help, Read read);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Sampled {
    std::string name;
    std::string help;
    prometheus::MetricType type;
    Read read;
  };

  mutable absl::Mutex mu_;
  std::vector<Sampled> sampled_ ABSL_GUARDED_BY(mu_);
};

}  // namespace im::observability

#endif  // IM_OBSERVABILITY_SAMPLED_METRICS_H_
