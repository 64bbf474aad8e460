#include "observability/grpc_server_metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/server_context.h>

#include <chrono>

#include "absl/strings/str_cat.h"

namespace im::observability {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::InterceptorBatchMethods;
using grpc::experimental::ServerRpcInfo;

constexpr char kUnknown[] = "unknown";

// A client whose deadline passes cancels the call itself, and that cancel
// can reach the server just before the server's copy of the deadline: a
// cancellation this close to the deadline counts as DeadlineExceeded.
constexpr std::chrono::milliseconds kDeadlineSlack(250);

// prometheus.DefBuckets, the buckets go-grpc-prometheus uses.
const prometheus::Histogram::BucketBoundaries& HandlingBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

struct MethodName {
  absl::string_view service;
  absl::string_view method;
};

// Splits "/package.Service/Method"; both parts empty when the shape is
// wrong.
MethodName SplitFullMethod(absl::string_view full_method) {
  if (full_method.empty() || full_method[0] != '/') return {};
  full_method.remove_prefix(1);
  const size_t slash = full_method.find('/');
  if (slash == absl::string_view::npos || slash == 0 ||
      slash + 1 == full_method.size()) {
    return {};
  }
  return {full_method.substr(0, slash), full_method.substr(slash + 1)};
}

// Whether the process implements `name`: generated services register their
// descriptors in the generated pool; gRPC's built-in health service does
// not, so it is named here.
bool IsKnownMethod(const MethodName& name) {
  if (name.service.empty()) return false;
  if (name.service == "grpc.health.v1.Health") {
    return name.method == "Check" || name.method == "Watch";
  }
  return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
             absl::StrCat(name.service, ".", name.method)) != nullptr;
}

}  // namespace

// Records one RPC. gRPC creates one per call and runs Intercept() for each
// batch of operations; batches of one call may run concurrently (a stream's
// reads and writes, its status and its close), hence the atomics.
//
// The call is counted as handled when it closes (POST_RECV_CLOSE): with the
// code of the status the server sent, or Canceled / DeadlineExceeded when
// the call was cancelled first. The cancellation bit is read only from
// callback-API contexts, where ServerContextBase::IsCancelled() is valid at
// any time; for sync-API calls a status sent before the close counts.
class GrpcServerMetrics::Interceptor : public grpc::experimental::Interceptor {
 public:
  Interceptor(GrpcServerMetrics& metrics, MethodSeries& series,
              ServerRpcInfo* info)
      : metrics_(metrics),
        series_(series),
        context_(info->server_context()),
        callback_api_(dynamic_cast<grpc::CallbackServerContext*>(context_) !=
                      nullptr),
        deadline_(context_->deadline()),
        start_(std::chrono::steady_clock::now()) {
    series_.started->Increment();
  }

  ~Interceptor() override {
    // Normally recorded at close already; a call torn down without a close
    // never delivered a status from the server.
    Record(/*cancelled=*/server_code_.load() < 0);
  }

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      series_.received->Increment();
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_SEND_MESSAGE) &&
        methods->GetSendMessageStatus()) {
      series_.sent->Increment();
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      server_elapsed_ns_.store(ElapsedNanos());
      server_code_.store(
          static_cast<int>(methods->GetSendStatus().error_code()));
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_CLOSE)) {
      const bool cancelled =
          server_code_.load() < 0 || (callback_api_ && context_->IsCancelled());
      Record(cancelled);
    }
    methods->Proceed();
  }

 private:
  int64_t ElapsedNanos() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now() - start_)
        .count();
  }

  // Counts the call as handled, once.
  void Record(bool cancelled) {
    if (recorded_.exchange(true)) return;
    grpc::StatusCode code = static_cast<grpc::StatusCode>(server_code_.load());
    int64_t elapsed_ns = server_elapsed_ns_.load();
    if (cancelled) {
      code = grpc::StatusCode::CANCELLED;
      if (std::chrono::system_clock::now() + kDeadlineSlack >= deadline_) {
        code = grpc::StatusCode::DEADLINE_EXCEEDED;
      }
      if (server_code_.load() < 0) elapsed_ns = ElapsedNanos();
    }
    metrics_.Handled(series_, code).Increment();
    series_.handling_seconds->Observe(static_cast<double>(elapsed_ns) * 1e-9);
  }

  GrpcServerMetrics& metrics_;
  MethodSeries& series_;
  grpc::ServerContextBase* const context_;
  // IsCancelled() may be called at any time only on callback-API contexts.
  // The destructor may run while the context is destroyed: it must not touch
  // context_.
  const bool callback_api_;
  const std::chrono::system_clock::time_point deadline_;
  const std::chrono::steady_clock::time_point start_;
  // The status the server sent (-1: none yet) and when it sent it.
  std::atomic<int> server_code_{-1};
  std::atomic<int64_t> server_elapsed_ns_{0};
  std::atomic<bool> recorded_{false};
};

class GrpcServerMetrics::InterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit InterceptorFactory(GrpcServerMetrics& metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      ServerRpcInfo* info) override {
    return new Interceptor(
        metrics_, metrics_.SeriesFor(info->method(), info->type()), info);
  }

 private:
  GrpcServerMetrics& metrics_;
};

GrpcServerMetrics::GrpcServerMetrics(prometheus::Registry& registry)
    : started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("RPCs started on the server.")
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name("grpc_server_handled_total")
                   .Help("RPCs completed on the server, by final status code.")
                   .Register(registry)),
      received_(prometheus::BuildCounter()
                    .Name("grpc_server_msg_received_total")
                    .Help("Messages the server received from clients.")
                    .Register(registry)),
      sent_(prometheus::BuildCounter()
                .Name("grpc_server_msg_sent_total")
                .Help("Messages the server sent to clients.")
                .Register(registry)),
      handling_seconds_(
          prometheus::BuildHistogram()
              .Name("grpc_server_handling_seconds")
              .Help("Seconds from the start of an RPC to its final status on "
                    "the server.")
              .Register(registry)) {}

GrpcServerMetrics::~GrpcServerMetrics() = default;

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
GrpcServerMetrics::NewInterceptorFactory() {
  return std::make_unique<InterceptorFactory>(*this);
}

const char* GrpcServerMetrics::TypeLabel(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return kUnknown;
}

const char* GrpcServerMetrics::CodeLabel(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

GrpcServerMetrics::MethodSeries& GrpcServerMetrics::SeriesFor(
    absl::string_view full_method, ServerRpcInfo::Type type) {
  // Implemented methods are cached under their full name ("/..."); other
  // names are checked on every call (rare), so the map stays bounded.
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = series_.find(full_method);
    if (it != series_.end()) return *it->second;
  }
  const MethodName name = SplitFullMethod(full_method);
  const bool known = IsKnownMethod(name);
  const char* type_label = TypeLabel(type);
  const std::string key = known ? std::string(full_method)
                                : absl::StrCat(kUnknown, "/", type_label);
  absl::MutexLock lock(&mu_);
  std::unique_ptr<MethodSeries>& slot = series_[key];
  if (slot == nullptr) {
    auto series = std::make_unique<MethodSeries>();
    series->labels = {
        {"grpc_type", type_label},
        {"grpc_service", known ? std::string(name.service) : kUnknown},
        {"grpc_method", known ? std::string(name.method) : kUnknown}};
    series->started = &started_.Add(series->labels);
    series->received = &received_.Add(series->labels);
    series->sent = &sent_.Add(series->labels);
    series->handling_seconds =
        &handling_seconds_.Add(series->labels, HandlingBuckets());
    slot = std::move(series);
  }
  return *slot;
}

prometheus::Counter& GrpcServerMetrics::Handled(MethodSeries& series,
                                                grpc::StatusCode code) {
  int index = static_cast<int>(code);
  if (index < 0 || index >= static_cast<int>(series.handled.size())) {
    index = static_cast<int>(grpc::StatusCode::UNKNOWN);
  }
  prometheus::Counter* counter =
      series.handled[index].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Family::Add returns the existing series for equal labels, so two
    // threads racing here store the same pointer.
    prometheus::Labels labels = series.labels;
    labels["grpc_code"] = CodeLabel(static_cast<grpc::StatusCode>(index));
    counter = &handled_.Add(labels);
    series.handled[index].store(counter, std::memory_order_release);
  }
  return *counter;
}

absl::Status GrpcServerMetrics::InitializeService(absl::string_view service) {
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(service));
  if (descriptor == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown gRPC service ", service));
  }
  for (int i = 0; i < descriptor->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* method = descriptor->method(i);
    ServerRpcInfo::Type type = ServerRpcInfo::Type::UNARY;
    if (method->client_streaming() && method->server_streaming()) {
      type = ServerRpcInfo::Type::BIDI_STREAMING;
    } else if (method->client_streaming()) {
      type = ServerRpcInfo::Type::CLIENT_STREAMING;
    } else if (method->server_streaming()) {
      type = ServerRpcInfo::Type::SERVER_STREAMING;
    }
    MethodSeries& series = SeriesFor(
        absl::StrCat("/", descriptor->full_name(), "/", method->name()), type);
    Handled(series, grpc::StatusCode::OK);
  }
  return absl::OkStatus();
}

}  // namespace im::observability
