// grpc-web edge: browsers and mobile apps speak grpc-web over HTTP/1.1 here;
// calls go on to the services over gRPC.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_join.h"
#include "im/auth/v1/auth.pb.h"
#include "im/history/v1/history.pb.h"
#include "im/message/v1/message.pb.h"
#include "im/presence/v1/presence.pb.h"
#include "observability/server_metrics.h"
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

// Touches one message of each service's proto file so the linker keeps them
// and their descriptors are in the generated pool, where the metrics look up
// each method's kind. Forwarding itself never uses them.
void LinkServiceDescriptors() {
  const google::protobuf::Descriptor* descriptors[] = {
      im::auth::v1::LoginRequest::descriptor(),
      im::history::v1::GetHistoryRequest::descriptor(),
      im::message::v1::SubscribeRequest::descriptor(),
      im::presence::v1::QueryRequest::descriptor(),
  };
  for (const auto* descriptor : descriptors) {
    spdlog::debug("gateway: knows {}", descriptor->file()->name());
  }
}

}  // namespace

int main(int argc, char** argv) {
  im::BlockTerminationSignals();
  absl::ParseCommandLine(argc, argv);
  im::ConfigureLoggingFromFlags();
  LinkServiceDescriptors();

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

  absl::StatusOr<std::unique_ptr<im::observability::ServerMetrics>>
      server_metrics = im::observability::ServerMetrics::Create(
          {absl::GetFlag(FLAGS_metrics_listen)});
  if (!server_metrics.ok()) {
    spdlog::critical("gateway: metrics: {}",
                     server_metrics.status().ToString());
    return 1;
  }
  if (!(*server_metrics)->address().empty()) {
    spdlog::info("gateway: metrics on http://{}/metrics",
                 (*server_metrics)->address());
  }
  std::unique_ptr<im::gateway::GatewayMetrics> metrics =
      im::gateway::MakePrometheusGatewayMetrics(
          (*server_metrics)->registry());

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
