#include "services/gateway/gateway_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace im::gateway {
namespace {

// grpc_code values as go-grpc-prometheus writes them, so existing dashboards
// and alert rules match.
std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "Canceled";
    case grpc::StatusCode::UNKNOWN: return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT: return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND: return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS: return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED: return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FailedPrecondition";
    case grpc::StatusCode::ABORTED: return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE: return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED: return "Unimplemented";
    case grpc::StatusCode::INTERNAL: return "Internal";
    case grpc::StatusCode::UNAVAILABLE: return "Unavailable";
    case grpc::StatusCode::DATA_LOSS: return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED: return "Unauthenticated";
    default: return absl::StrCat("Code(", static_cast<int>(code), ")");
  }
}

class NoopGatewayMetrics : public GatewayMetrics {
 public:
  void CallStarted(absl::string_view, absl::string_view) override {}
  void MessageReceived(absl::string_view, absl::string_view) override {}
  void MessageSent(absl::string_view, absl::string_view) override {}
  void CallHandled(absl::string_view, absl::string_view, grpc::StatusCode,
                   absl::Duration) override {}
  void HttpRequest(absl::string_view, int) override {}
  void ConnectionOpened() override {}
  void ConnectionClosed() override {}
  void ConnectionRejected() override {}
};

class PrometheusGatewayMetrics : public GatewayMetrics {
 public:
  explicit PrometheusGatewayMetrics(prometheus::Registry& registry)
      : started_(prometheus::BuildCounter()
                     .Name("grpc_server_started_total")
                     .Help("RPCs started on the server.")
                     .Register(registry)),
        handled_(prometheus::BuildCounter()
                     .Name("grpc_server_handled_total")
                     .Help("RPCs completed on the server, by code.")
                     .Register(registry)),
        received_(prometheus::BuildCounter()
                      .Name("grpc_server_msg_received_total")
                      .Help("Stream messages received from clients.")
                      .Register(registry)),
        sent_(prometheus::BuildCounter()
                  .Name("grpc_server_msg_sent_total")
                  .Help("Stream messages sent to clients.")
                  .Register(registry)),
        handling_(prometheus::BuildHistogram()
                      .Name("grpc_server_handling_seconds")
                      .Help("Time from start to completion of an RPC.")
                      .Register(registry)),
        live_calls_(prometheus::BuildGauge()
                        .Name("gateway_live_calls")
                        .Help("grpc-web calls (unary and streams) in flight.")
                        .Register(registry)
                        .Add({})),
        http_requests_(prometheus::BuildCounter()
                           .Name("gateway_http_requests_total")
                           .Help("HTTP requests by kind and HTTP status.")
                           .Register(registry)),
        connections_(prometheus::BuildGauge()
                         .Name("gateway_connections")
                         .Help("Open browser connections.")
                         .Register(registry)
                         .Add({})),
        connections_rejected_(
            prometheus::BuildCounter()
                .Name("gateway_connections_rejected_total")
                .Help("Connections refused at the connection limit.")
                .Register(registry)
                .Add({})) {}

  void CallStarted(absl::string_view service,
                   absl::string_view method) override {
    started_.Add(Labels(service, method)).Increment();
    live_calls_.Increment();
  }
  void MessageReceived(absl::string_view service,
                       absl::string_view method) override {
    received_.Add(Labels(service, method)).Increment();
  }
  void MessageSent(absl::string_view service,
                   absl::string_view method) override {
    sent_.Add(Labels(service, method)).Increment();
  }
  void CallHandled(absl::string_view service, absl::string_view method,
                   grpc::StatusCode code, absl::Duration elapsed) override {
    prometheus::Labels labels = Labels(service, method);
    handling_.Add(labels, Buckets())
        .Observe(absl::ToDoubleSeconds(elapsed));
    labels["grpc_code"] = CodeName(code);
    handled_.Add(labels).Increment();
    live_calls_.Decrement();
  }
  void HttpRequest(absl::string_view kind, int status) override {
    http_requests_
        .Add({{"kind", std::string(kind)}, {"code", absl::StrCat(status)}})
        .Increment();
  }
  void ConnectionOpened() override { connections_.Increment(); }
  void ConnectionClosed() override { connections_.Decrement(); }
  void ConnectionRejected() override { connections_rejected_.Increment(); }

 private:
  static prometheus::Labels Labels(absl::string_view service,
                                   absl::string_view method) {
    return {{"grpc_type", "grpc_web"},
            {"grpc_service", std::string(service)},
            {"grpc_method", std::string(method)}};
  }
  static const prometheus::Histogram::BucketBoundaries& Buckets() {
    static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25,  0.5,    1,     2.5,  5,     10,   60};
    return *buckets;
  }

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& sent_;
  prometheus::Family<prometheus::Histogram>& handling_;
  prometheus::Gauge& live_calls_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  prometheus::Gauge& connections_;
  prometheus::Counter& connections_rejected_;
};

}  // namespace

std::unique_ptr<GatewayMetrics> MakeNoopGatewayMetrics() {
  return std::make_unique<NoopGatewayMetrics>();
}

std::unique_ptr<GatewayMetrics> MakePrometheusGatewayMetrics(
    prometheus::Registry& registry) {
  return std::make_unique<PrometheusGatewayMetrics>(registry);
}

}  // namespace im::gateway
