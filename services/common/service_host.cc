#include "services/common/service_host.h"

#include <utility>

#include "spdlog/spdlog.h"

namespace im {
ServiceBundle::~ServiceBundle() {
  drain_hooks_.clear();
  stop_hooks_.clear();
  while (!owned_.empty()) owned_.pop_back();
}

void ServiceBundle::Drain() {
  for (const auto& hook : drain_hooks_) hook();
}

void ServiceBundle::Stop() {
  for (const auto& hook : stop_hooks_) hook();
}

int RunService(const ServiceHostOptions& options,
               const ServiceFactory& factory) {
  return RunService(options, [&factory](observability::ServerMetrics&) {
    return factory();
  });
}

int RunService(const ServiceHostOptions& options,
               const MeteredServiceFactory& factory) {
  BlockTerminationSignals();
  const std::string& name = options.server.name;
  spdlog::info("{} starting: listen={} tls={} drain_grace={}", name,
               options.server.listen_address,
               options.server.tls.enabled() ? "on" : "off",
               absl::FormatDuration(options.drain_grace));
  if (!options.startup_config.empty()) {
    spdlog::info("{} config: {}", name, options.startup_config);
  }

  // Outlives the service and the server, which record into it.
  absl::StatusOr<std::unique_ptr<observability::ServerMetrics>> metrics =
      observability::ServerMetrics::Create({options.metrics_listen});
  if (!metrics.ok()) {
    spdlog::error("{} cannot start: {}", name, metrics.status().ToString());
    return 1;
  }
  if (!(*metrics)->address().empty()) {
    spdlog::info("{} metrics on http://{}/metrics", name,
                 (*metrics)->address());
  }
  // Zero-valued series for every method from the first scrape.
  if (!name.empty()) (*metrics)->grpc().InitializeService(name).IgnoreError();

  absl::StatusOr<std::unique_ptr<HostedService>> service =
      factory(**metrics);
  if (!service.ok()) {
    spdlog::error("{} cannot start: {}", name, service.status().ToString());
    return 1;
  }
  ServerOptions server_options = options.server;
  observability::GrpcServerMetrics* rpc_metrics = &(*metrics)->grpc();
  server_options.interceptors.insert(
      server_options.interceptors.begin(),
      [rpc_metrics] { return rpc_metrics->NewInterceptorFactory(); });
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(server_options, (*service)->GrpcServices());
  if (!server.ok()) {
    spdlog::error("{} cannot start: {}", name, server.status().ToString());
    return 1;
  }
  if (options.on_serving) options.on_serving((*server)->address());

  if (options.wait_for_stop) {
    options.wait_for_stop();
    spdlog::info("{} stopping", name);
  } else {
    const int signal_number = WaitForTerminationSignal();
    spdlog::info("{} stopping on signal {}", name, signal_number);
  }

  (*server)->Drain();
  (*service)->Drain();
  (*server)->Shutdown(options.drain_grace);
  (*server)->Wait();
  (*service)->Stop();
  // Collectables may read the service: no scrape after this point.
  (*metrics)->StopServing();
  server->reset();
  service->reset();
  spdlog::info("{} stopped", name);
  return 0;
}

}  // namespace im
