// grpc-web edge: browsers and mobile apps speak grpc-web over HTTP/1.1 here;
// calls go on to the services over gRPC.

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_join.h"
#include "services/common/grpc_server.h"
#include "services/common/server_flags.h"
#include "services/gateway/gateway.h"
#include "services/gateway/gateway_metrics.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, auth_addr, "127.0.0.1:50051",
          "host:port of the auth service (im.auth.v1.AuthService)");
ABSL_FLAG(std::string, presence_addr, "127.0.0.1:50052",
          "host:port of the presence service (im.presence.v1.PresenceService)");
ABSL_FLAG(std::string, message_addr, "127.0.0.1:50053",
          "host:port of the message service (im.message.v1.MessageService)");
ABSL_FLAG(std::string, history_addr, "127.0.0.1:50054",
          "host:port of the history service (im.history.v1.HistoryService)");
ABSL_FLAG(std::vector<std::string>, route, {},
          "Extra routes, comma-separated /package.Service/=host:port entries");
ABSL_FLAG(std::vector<std::string>, cors_allowed_origins, {},
          "Browser origins (scheme://host[:port]) granted CORS besides the "
          "gateway's own origin; comma-separated. No wildcard.");
ABSL_FLAG(std::vector<std::string>, forwarded_headers,
          std::vector<std::string>({"authorization", "x-request-id"}),
          "Request headers passed to the services as gRPC metadata");
ABSL_FLAG(int64_t, max_request_bytes, 1 << 20,
          "Largest request body; larger grpc-web calls get RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_calls_per_client, 64,
          "Concurrent grpc-web calls (unary and streams) per client IP");
ABSL_FLAG(int, max_connections, 10000, "Open HTTP connections at most");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "Close a connection with no request in progress after this long");
ABSL_FLAG(absl::Duration, write_timeout, absl::Seconds(30),
          "Treat a browser that takes no response bytes this long as gone");
ABSL_FLAG(std::string, web_root, "",
          "Directory with the built web page to serve (empty = none)");
ABSL_FLAG(int, io_threads, 2, "Threads for HTTP I/O");

namespace {

constexpr char kDefaultListen[] = "127.0.0.1:8080";

}  // namespace

int main(int argc, char** argv) {
  im::BlockTerminationSignals();
  absl::ParseCommandLine(argc, argv);
  im::ConfigureLoggingFromFlags();

  if (!absl::GetFlag(FLAGS_tls_cert).empty()) {
    spdlog::critical(
        "gateway: --tls_cert is not supported on the HTTP listener; "
        "terminate TLS in front of the gateway (see deploy/envoy)");
    return 1;
  }

  im::gateway::GatewayOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  if (options.listen_address.empty()) options.listen_address = kDefaultListen;
  options.routes = {
      {"/im.auth.v1.AuthService/", absl::GetFlag(FLAGS_auth_addr)},
      {"/im.presence.v1.PresenceService/", absl::GetFlag(FLAGS_presence_addr)},
      {"/im.message.v1.MessageService/", absl::GetFlag(FLAGS_message_addr)},
      {"/im.history.v1.HistoryService/", absl::GetFlag(FLAGS_history_addr)},
  };
  for (const std::string& spec : absl::GetFlag(FLAGS_route)) {
    absl::StatusOr<im::gateway::Route> route = im::gateway::ParseRoute(spec);
    if (!route.ok()) {
      spdlog::critical("gateway: {}", route.status().ToString());
      return 1;
    }
    options.routes.push_back(*route);
  }
  options.peer_tls = im::PeerTlsOptionsFromFlags();
  options.cors_allowed_origins = absl::GetFlag(FLAGS_cors_allowed_origins);
  options.forwarded_headers = absl::GetFlag(FLAGS_forwarded_headers);
  options.max_request_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_max_request_bytes));
  options.max_calls_per_client = absl::GetFlag(FLAGS_max_calls_per_client);
  options.max_connections = absl::GetFlag(FLAGS_max_connections);
  options.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  options.write_timeout = absl::GetFlag(FLAGS_write_timeout);
  options.web_root = absl::GetFlag(FLAGS_web_root);
  options.io_threads = absl::GetFlag(FLAGS_io_threads);

  for (const auto& route : options.routes) {
    spdlog::info("gateway: route {} -> {}", route.path_prefix, route.address);
  }
  spdlog::info(
      "gateway: cors_allowed_origins=[{}] web_root={} max_request_bytes={} "
      "max_calls_per_client={} max_connections={} idle_timeout={} "
      "write_timeout={}",
      absl::StrJoin(options.cors_allowed_origins, ","),
      options.web_root.empty() ? "(none)" : options.web_root,
      options.max_request_bytes, options.max_calls_per_client,
      options.max_connections, absl::FormatDuration(options.idle_timeout),
      absl::FormatDuration(options.write_timeout));

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_listen);
    } catch (const std::exception& e) {
      spdlog::critical("gateway: cannot serve metrics on {}: {}",
                       metrics_listen, e.what());
      return 1;
    }
    exposer->RegisterCollectable(registry);
    spdlog::info("gateway: metrics on http://{}/metrics", metrics_listen);
  }
  std::unique_ptr<im::gateway::GatewayMetrics> metrics =
      im::gateway::MakePrometheusGatewayMetrics(*registry);

  absl::StatusOr<std::unique_ptr<im::gateway::Gateway>> gateway =
      im::gateway::Gateway::Start(options, metrics.get());
  if (!gateway.ok()) {
    spdlog::critical("gateway: {}", gateway.status().ToString());
    return 1;
  }
  spdlog::info("gateway listening on {}", (*gateway)->address());
  std::printf("gateway listening on %s\n", (*gateway)->address().c_str());
  std::fflush(stdout);

  const int signal_number = im::WaitForTerminationSignal();
  spdlog::info("gateway: signal {}, draining", signal_number);
  (*gateway)->Drain();
  (*gateway)->Shutdown(absl::GetFlag(FLAGS_drain_grace));
  spdlog::info("gateway: stopped");
  return 0;
}
