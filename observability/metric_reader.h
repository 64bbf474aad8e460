#ifndef IM_OBSERVABILITY_METRIC_READER_H_
#define IM_OBSERVABILITY_METRIC_READER_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "prometheus/collectable.h"
#include "prometheus/labels.h"

namespace im::observability {

// Reads current values out of a registry (or any Collectable), for tests.
//
// `name` is a sample name as Prometheus sees it: a counter or gauge family
// name, or a histogram's name + "_count" / "_sum".

// The sample whose labels equal `labels` exactly; nullopt when absent.
std::optional<double> FindSample(const prometheus::Collectable& source,
                                 absl::string_view name,
                                 const prometheus::Labels& labels = {});

// Sum over every series of `name` whose labels include `labels`; 0 when
// none matches.
double SumSamples(const prometheus::Collectable& source, absl::string_view name,
                  const prometheus::Labels& labels = {});

}  // namespace im::observability

#endif  // IM_OBSERVABILITY_METRIC_READER_H_
