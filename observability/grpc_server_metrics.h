#ifndef IM_OBSERVABILITY_GRPC_SERVER_METRICS_H_
#define IM_OBSERVABILITY_GRPC_SERVER_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace im::observability {

// Server-side RPC metrics with the names, labels and label values of
// grpc-ecosystem/go-grpc-prometheus, so dashboards and rules written for Go
// services work unchanged:
//   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_server_msg_received_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_msg_sent_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}, a
//   histogram with Prometheus' default buckets
// grpc_type is unary, client_stream, server_stream or bidi_stream;
// grpc_code is Go's spelling of the code ("OK", "NotFound", "Canceled").
// A call counts as started when it arrives and as handled when it closes:
// with the code of the status the server sent, or "Canceled" /
// "DeadlineExceeded" when it was cancelled or timed out before that.
//
// Labels stay bounded: a method that is not in the process's generated
// descriptor pool (a typo or a probe from a client) is recorded as
// grpc_service="unknown", grpc_method="unknown".
//
// Thread-safe. Must outlive every server that uses its interceptor.
class GrpcServerMetrics {
 public:
  explicit GrpcServerMetrics(prometheus::Registry& registry);
  ~GrpcServerMetrics();

  GrpcServerMetrics(const GrpcServerMetrics&) = delete;
  GrpcServerMetrics& operator=(const GrpcServerMetrics&) = delete;

  // For ServerBuilder::experimental().SetInterceptorCreators(); the factory
  // refers to this object.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewInterceptorFactory();

  // Creates the zero-valued series of every method of `service` (full name,
  // e.g. "im.auth.v1.AuthService"; codes OK only) so that rate() and
  // absent() behave from the first scrape. NOT_FOUND if the service is not
  // in the generated descriptor pool.
  absl::Status InitializeService(absl::string_view service);

  // The label values for `grpc_type` of a method kind.
  static const char* TypeLabel(grpc::experimental::ServerRpcInfo::Type type);
  // Go's name of a status code, e.g. "NotFound"; "Unknown" when out of range.
  static const char* CodeLabel(grpc::StatusCode code);

 private:
  // The series of one method, created on its first call.
  struct MethodSeries {
    prometheus::Labels labels;
    prometheus::Counter* started = nullptr;
    prometheus::Counter* received = nullptr;
    prometheus::Counter* sent = nullptr;
    prometheus::Histogram* handling_seconds = nullptr;
    // grpc_server_handled_total by status code, created on first use.
    std::array<std::atomic<prometheus::Counter*>, 17> handled{};
  };
  class Interceptor;
  class InterceptorFactory;

  // The series for `full_method` ("/package.Service/Method"); stable for
  // the life of this object.
  MethodSeries& SeriesFor(absl::string_view full_method,
                          grpc::experimental::ServerRpcInfo::Type type);
  prometheus::Counter& Handled(MethodSeries& series, grpc::StatusCode code);

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& sent_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;

  absl::Mutex mu_;
  // Keyed by full method name, or "unknown" for methods not in the pool.
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> series_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace im::observability

#endif  // IM_OBSERVABILITY_GRPC_SERVER_METRICS_H_
