// Cost of the RPC metrics interceptor: unary and bidi-stream round trips
// over loopback with and without it. CPU is the whole process (client and
// server threads), steadier than wall time on a loaded machine.
//
//   bazel run -c opt //observability:grpc_server_metrics_benchmark

#include <grpcpp/grpcpp.h>

#include <memory>

#include "benchmark/benchmark.h"
#include "im/testing/v1/echo.grpc.pb.h"
#include "observability/grpc_server_metrics.h"
#include "prometheus/registry.h"
#include "services/common/grpc_server.h"

namespace im::observability {
namespace {

using ::im::testing::v1::EchoRequest;
using ::im::testing::v1::EchoResponse;
using ::im::testing::v1::EchoService;

class EchoServiceImpl final : public EchoService::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const EchoRequest* request,
                                 EchoResponse* response) override {
    response->set_text(request->text());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerBidiReactor<EchoRequest, EchoResponse>* Converse(
      grpc::CallbackServerContext*) override {
    class Reactor : public grpc::ServerBidiReactor<EchoRequest, EchoResponse> {
     public:
      Reactor() { StartRead(&request_); }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status::OK);
          return;
        }
        response_.set_text(request_.text());
        StartWrite(&response_);
      }
      void OnWriteDone(bool ok) override {
        if (ok) {
          StartRead(&request_);
        } else {
          Finish(grpc::Status::CANCELLED);
        }
      }
      void OnDone() override { delete this; }

     private:
      EchoRequest request_;
      EchoResponse response_;
    };
    return new Reactor();
  }
};

// A server with or without the interceptor, and a stub to it.
struct Fixture {
  explicit Fixture(bool with_metrics) {
    ServerOptions options;
    if (with_metrics) {
      options.interceptors.push_back(
          [this] { return metrics.NewInterceptorFactory(); });
    }
    server = *GrpcServer::Start(options, {&service});
    stub = EchoService::NewStub(grpc::CreateChannel(
        server->address(), grpc::InsecureChannelCredentials()));
  }

  prometheus::Registry registry;
  GrpcServerMetrics metrics{registry};
  EchoServiceImpl service;
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<EchoService::Stub> stub;
};

void BM_UnaryRoundTrip(benchmark::State& state) {
  Fixture fixture(state.range(0) != 0);
  EchoRequest request;
  request.set_text("ping");
  for (auto _ : state) {
    grpc::ClientContext context;
    EchoResponse response;
    if (!fixture.stub->Echo(&context, request, &response).ok()) {
      state.SkipWithError("Echo failed");
      return;
    }
  }
}
BENCHMARK(BM_UnaryRoundTrip)->Arg(0)->Arg(1)->ArgName("metrics")->MeasureProcessCPUTime()->UseRealTime();

void BM_StreamRoundTrip(benchmark::State& state) {
  Fixture fixture(state.range(0) != 0);
  grpc::ClientContext context;
  auto stream = fixture.stub->Converse(&context);
  EchoRequest request;
  request.set_text("ping");
  EchoResponse response;
  for (auto _ : state) {
    if (!stream->Write(request) || !stream->Read(&response)) {
      state.SkipWithError("stream broke");
      return;
    }
  }
  stream->WritesDone();
  (void)stream->Finish();
}
BENCHMARK(BM_StreamRoundTrip)->Arg(0)->Arg(1)->ArgName("metrics")->MeasureProcessCPUTime()->UseRealTime();

}  // namespace
}  // namespace im::observability
