#ifndef IM_OBSERVABILITY_UNEXPORTED_REGISTRY_H_
#define IM_OBSERVABILITY_UNEXPORTED_REGISTRY_H_

#include "prometheus/registry.h"

namespace im::observability {

// A process-wide registry that no endpoint serves: where components built
// without a metrics registry (unit tests, tools) record. Never destroyed.
prometheus::Registry& UnexportedRegistry();

}  // namespace im::observability

#endif  // IM_OBSERVABILITY_UNEXPORTED_REGISTRY_H_
