#ifndef IM_OBSERVABILITY_SERVER_METRICS_H_
#define IM_OBSERVABILITY_SERVER_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "observability/grpc_server_metrics.h"
#include "observability/process_metrics.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace im::observability {

// Everything one server process exports to Prometheus: a registry for the
// RPC interceptor's and the service's own metrics, the process_* metrics,
// and the HTTP endpoint that serves them all on GET /metrics.
//
// Thread-safe. Must outlive the gRPC servers using grpc() and every object
// holding metrics from registry().
class ServerMetrics {
 public:
  struct Options {
    // host:port for the /metrics endpoint (port 0 = any free port); empty =
    // no endpoint (metrics are still recorded, e.g. in tests).
    std::string listen_address;
  };

  // INVALID_ARGUMENT when listen_address is not host:port; UNAVAILABLE when
  // it cannot be bound.
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(
      const Options& options);

  ~ServerMetrics();

  // Where services register their own metric families.
  prometheus::Registry& registry() { return *registry_; }
  // RPC metrics; install grpc().NewInterceptorFactory() in the server.
  GrpcServerMetrics& grpc() { return *grpc_; }

  // Serves `collectable` (e.g. SampledMetrics) with the rest from now on.
  // What it reads must stay valid until StopServing() or destruction.
  void AddCollectable(std::shared_ptr<prometheus::Collectable> collectable);

  // Closes the endpoint (no scrape runs after this returns); the service
  // host calls it before it destroys the service. Idempotent.
  void StopServing();

  // The endpoint's bound port and host:port; 0 and "" without an endpoint.
  int port() const { return port_; }
  const std::string& address() const { return address_; }

  // The text exposition GET /metrics returns.
  std::string Scrape() const;

 private:
  ServerMetrics();

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ProcessMetrics> process_;
  std::unique_ptr<GrpcServerMetrics> grpc_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_
      ABSL_GUARDED_BY(mu_);
  // Declared last: stops serving before the collectables go away.
  std::unique_ptr<prometheus::Exposer> exposer_ ABSL_GUARDED_BY(mu_);
  int port_ = 0;
  std::string address_;
};

}  // namespace im::observability

#endif  // IM_OBSERVABILITY_SERVER_METRICS_H_
