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
  BlockTerminationSignals();
  const std::string& name = options.server.name;
  spdlog::info("{} starting: listen={} tls={} drain_grace={}", name,
               options.server.listen_address,
               options.server.tls.enabled() ? "on" : "off",
               absl::FormatDuration(options.drain_grace));
  if (!options.startup_config.empty()) {
    spdlog::info("{} config: {}", name, options.startup_config);
  }

  absl::StatusOr<std::unique_ptr<HostedService>> service = factory();
  if (!service.ok()) {
    spdlog::error("{} cannot start: {}", name, service.status().ToString());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(options.server, (*service)->GrpcServices());
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
  server->reset();
  service->reset();
  spdlog::info("{} stopped", name);
  return 0;
}

}  // namespace im
