#include "services/gateway/gateway_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "observability/grpc_server_metrics.h"

namespace im::gateway {
namespace {

constexpr char kUnknown[] = "unknown";

// grpc_type of a method as the generated descriptor pool describes it. The
// gateway forwards without knowing types; main links the services' protos
// so the labels match the services' own. Methods not in the pool (typos,
// probes) are "unknown", so clients cannot create label values.
struct MethodLabels {
  std::string type;
  std::string service;
  std::string method;
};

MethodLabels LabelsFor(absl::string_view service, absl::string_view method) {
  const google::protobuf::MethodDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrCat(service, ".", method));
  if (descriptor == nullptr) return {"unary", kUnknown, kUnknown};
  const char* type = "unary";
  if (descriptor->client_streaming()) {
    type = descriptor->server_streaming() ? "bidi_stream" : "client_stream";
  } else if (descriptor->server_streaming()) {
    type = "server_stream";
  }
  return {type, std::string(service), std::string(method)};
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

// Registers the grpc_server_* families by name; prometheus-cpp merges them
// with the same families of the observability library's RPC interceptor
// when both use one registry.
class PrometheusGatewayMetrics : public GatewayMetrics {
 public:
  explicit PrometheusGatewayMetrics(prometheus::Registry& registry)
      : started_(prometheus::BuildCounter()
                     .Name("grpc_server_started_total")
                     .Help("Total number of RPCs started on the server.")
                     .Register(registry)),
        handled_(prometheus::BuildCounter()
                     .Name("grpc_server_handled_total")
                     .Help("Total number of RPCs completed on the server, "
                           "regardless of success or failure.")
                     .Register(registry)),
        received_(prometheus::BuildCounter()
                      .Name("grpc_server_msg_received_total")
                      .Help("Total number of RPC stream messages received on "
                            "the server.")
                      .Register(registry)),
        sent_(prometheus::BuildCounter()
                  .Name("grpc_server_msg_sent_total")
                  .Help("Total number of gRPC stream messages sent by the "
                        "server.")
                  .Register(registry)),
        handling_(prometheus::BuildHistogram()
                      .Name("grpc_server_handling_seconds")
                      .Help("Histogram of response latency (seconds) of gRPC "
                            "that had been application-level handled by the "
                            "server.")
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
    labels["grpc_code"] = observability::GrpcServerMetrics::CodeLabel(code);
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
  prometheus::Labels Labels(absl::string_view service,
                            absl::string_view method) {
    const std::string key = absl::StrCat(service, "/", method);
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = labels_.find(key);
      if (it != labels_.end()) return it->second;
    }
    const MethodLabels names = LabelsFor(service, method);
    prometheus::Labels labels = {{"grpc_type", names.type},
                                 {"grpc_service", names.service},
                                 {"grpc_method", names.method}};
    // Only methods of the descriptor pool are remembered, so the cache is
    // bounded whatever paths clients send.
    if (names.service != kUnknown) {
      absl::MutexLock lock(&mu_);
      labels_.emplace(key, labels);
    }
    return labels;
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

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, prometheus::Labels> labels_
      ABSL_GUARDED_BY(mu_);
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
