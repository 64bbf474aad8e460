#ifndef IM_SERVICES_GATEWAY_GATEWAY_METRICS_H_
#define IM_SERVICES_GATEWAY_GATEWAY_METRICS_H_

#include <grpcpp/support/status.h>

#include <memory>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace prometheus {
class Registry;
}

namespace im::gateway {

// What the gateway reports. The gateway calls these from its I/O threads;
// implementations must be thread-safe and must not block. Kept as an
// interface so the project's shared observability library can take over the
// Prometheus side without touching the proxy.
class GatewayMetrics {
 public:
  virtual ~GatewayMetrics() = default;

  // A grpc-web call for a well-formed method path arrived (`service` is the
  // full service name, e.g. "im.auth.v1.AuthService"). Exactly one
  // CallHandled follows, also for calls refused before forwarding.
  virtual void CallStarted(absl::string_view service,
                           absl::string_view method) = 0;
  // The browser's request message was forwarded.
  virtual void MessageReceived(absl::string_view service,
                               absl::string_view method) = 0;
  // A backend message was written to the browser.
  virtual void MessageSent(absl::string_view service,
                           absl::string_view method) = 0;
  // A call ended with `code` (the code the browser saw), `elapsed` after
  // CallStarted.
  virtual void CallHandled(absl::string_view service, absl::string_view method,
                           grpc::StatusCode code, absl::Duration elapsed) = 0;
  // Any HTTP request: kind is "grpc_web", "preflight", "static", "healthz"
  // or "other"; status is the HTTP status sent.
  virtual void HttpRequest(absl::string_view kind, int status) = 0;
  virtual void ConnectionOpened() = 0;
  virtual void ConnectionClosed() = 0;
  // A connection refused because the connection limit was reached.
  virtual void ConnectionRejected() = 0;
};

// Records nothing; for tests and when no metrics listener is configured.
std::unique_ptr<GatewayMetrics> MakeNoopGatewayMetrics();

// Records into `registry` with the names and labels the services' RPC
// interceptor uses (grpc_server_started_total, grpc_server_handled_total,
// grpc_server_msg_received_total, grpc_server_msg_sent_total,
// grpc_server_handling_seconds) plus gateway_* series. grpc_type comes from
// the generated descriptor pool (link the services' protos); methods not in
// it are grpc_service="unknown", grpc_method="unknown". `registry` must
// outlive the result.
std::unique_ptr<GatewayMetrics> MakePrometheusGatewayMetrics(
    prometheus::Registry& registry);

}  // namespace im::gateway

#endif  // IM_SERVICES_GATEWAY_GATEWAY_METRICS_H_
