#ifndef IM_SERVICES_COMMON_SERVICE_HOST_H_
#define IM_SERVICES_COMMON_SERVICE_HOST_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "observability/server_metrics.h"
#include "services/common/grpc_server.h"

namespace im {

// What one service binary serves: its gRPC services plus everything they
// point into (stores, pools, codecs), and its shutdown hooks.
class HostedService {
 public:
  virtual ~HostedService() = default;

  // Registered with the gRPC server; valid as long as this object.
  virtual std::vector<grpc::Service*> GrpcServices() = 0;

  // Runs after health turned NOT_SERVING and before the server stops
  // accepting calls: end long-lived streams (Chat, Subscribe, Poll) so that
  // Shutdown completes within the grace period.
  virtual void Drain() {}

  // Runs after the server has shut down: stop background threads, flush.
  virtual void Stop() {}
};

// Builds the service. Runs after SIGTERM/SIGINT are blocked, so it may
// start threads. A failure ends the binary with exit code 1.
using ServiceFactory =
    std::function<absl::StatusOr<std::unique_ptr<HostedService>>()>;
// The same, for a service with metrics of its own: it adds them to
// `metrics` (metrics.registry(), or metrics.AddCollectable for values read
// from the service at scrape time). `metrics` outlives the service, and
// stops serving before the service is destroyed.
using MeteredServiceFactory =
    std::function<absl::StatusOr<std::unique_ptr<HostedService>>(
        observability::ServerMetrics& metrics)>;

struct ServiceHostOptions {
  // Listener, TLS and limits; `server.name` names the service in logs and
  // the health service (e.g. "im.auth.v1.AuthService").
  ServerOptions server;
  // host:port for Prometheus' GET /metrics (port 0 = any free port); empty
  // = no endpoint. Either way every RPC is recorded (go-grpc-prometheus
  // names, see observability/grpc_server_metrics.h).
  std::string metrics_listen;
  // How long in-flight calls may finish after the stop request.
  absl::Duration drain_grace = absl::Seconds(5);
  // Logged once at start-up (main.cc passes FlagSummary()).
  std::string startup_config;
  // Blocks until the service should stop. Default: WaitForTerminationSignal.
  std::function<void()> wait_for_stop;
  // Called with the bound host:port once the server is serving.
  std::function<void(const std::string& address)> on_serving;
};

// The life of one service binary: blocks SIGTERM and SIGINT, logs the
// start-up config, starts the metrics endpoint (--metrics_listen: RPC,
// process and the service's own metrics), builds the service with
// `factory`, serves it (health, reflection and the RPC metrics interceptor
// included), waits for the stop request, then shuts down in order: health
// NOT_SERVING -> HostedService::Drain -> server Shutdown with `drain_grace`
// -> HostedService::Stop. Returns main()'s exit code: 0 after a clean stop,
// 1 when the service cannot be built or cannot listen.
// Call it from main() before any thread exists.
int RunService(const ServiceHostOptions& options,
               const MeteredServiceFactory& factory);
int RunService(const ServiceHostOptions& options,
               const ServiceFactory& factory);

// A HostedService assembled in main.cc: owns the service objects and their
// dependencies, lists the gRPC services to register and runs drain/stop
// hooks in the order they were added.
class ServiceBundle final : public HostedService {
 public:
  ServiceBundle() = default;
  ServiceBundle(const ServiceBundle&) = delete;
  ServiceBundle& operator=(const ServiceBundle&) = delete;
  // Destroys the owned objects in reverse order of Own(), so an object may
  // point into any owned before it.
  ~ServiceBundle() override;

  // Keeps `object` alive as long as the bundle and returns it.
  template <typename T>
  T* Own(std::unique_ptr<T> object) {
    T* raw = object.get();
    owned_.push_back(std::shared_ptr<void>(std::move(object)));
    return raw;
  }
  // Registers `service` with the server (usually an object from Own()).
  void Serve(grpc::Service* service) { services_.push_back(service); }
  void OnDrain(std::function<void()> hook) {
    drain_hooks_.push_back(std::move(hook));
  }
  void OnStop(std::function<void()> hook) {
    stop_hooks_.push_back(std::move(hook));
  }

  std::vector<grpc::Service*> GrpcServices() override { return services_; }
  void Drain() override;
  void Stop() override;

 private:
  std::vector<std::shared_ptr<void>> owned_;
  std::vector<grpc::Service*> services_;
  std::vector<std::function<void()>> drain_hooks_;
  std::vector<std::function<void()>> stop_hooks_;
};

}  // namespace im

#endif  // IM_SERVICES_COMMON_SERVICE_HOST_H_
