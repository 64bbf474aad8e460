#include "observability/unexported_registry.h"

namespace im::observability {

prometheus::Registry& UnexportedRegistry() {
  static prometheus::Registry* const registry = new prometheus::Registry();
  return *registry;
}

}  // namespace im::observability
