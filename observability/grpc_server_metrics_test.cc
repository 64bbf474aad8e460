#include "observability/grpc_server_metrics.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "im/testing/v1/echo.grpc.pb.h"
#include "observability/metric_reader.h"
#include "services/common/grpc_server.h"

namespace im::observability {
namespace {

using ::im::testing::v1::EchoRequest;
using ::im::testing::v1::EchoResponse;
using ::im::testing::v1::EchoService;

constexpr char kService[] = "im.testing.v1.EchoService";

grpc::Status RequestedStatus(const EchoRequest& request) {
  if (request.fail_code() == 0) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(request.fail_code()),
                      "requested failure");
}

// Collect: reads until the client half-closes, then answers once.
class CollectReactor : public grpc::ServerReadReactor<EchoRequest> {
 public:
  explicit CollectReactor(EchoResponse* response) : response_(response) {
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    response_->mutable_text()->append(request_.text());
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  EchoResponse* response_;
  EchoRequest request_;
};

// Expand: `repeat` responses, one write at a time, then the requested status.
class ExpandReactor : public grpc::ServerWriteReactor<EchoResponse> {
 public:
  explicit ExpandReactor(const EchoRequest& request)
      : remaining_(request.repeat()), status_(RequestedStatus(request)) {
    response_.set_text(request.text());
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (remaining_-- > 0) {
      StartWrite(&response_);
    } else {
      Finish(status_);
    }
  }

  int remaining_;
  const grpc::Status status_;
  EchoResponse response_;
};

// Converse: answers each request; a request with fail_code ends the call
// with that code; a client half-close ends it with OK.
class ConverseReactor
    : public grpc::ServerBidiReactor<EchoRequest, EchoResponse> {
 public:
  ConverseReactor() { StartRead(&request_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(cancelled_ ? grpc::Status::CANCELLED : grpc::Status::OK);
      return;
    }
    if (request_.fail_code() != 0) {
      Finish(RequestedStatus(request_));
      return;
    }
    response_.set_text(request_.text());
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    StartRead(&request_);
  }
  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  EchoRequest request_;
  EchoResponse response_;
  std::atomic<bool> cancelled_{false};
};

class EchoServiceImpl final : public EchoService::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const EchoRequest* request,
                                 EchoResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    response->set_text(request->text());
    reactor->Finish(RequestedStatus(*request));
    return reactor;
  }
  grpc::ServerReadReactor<EchoRequest>* Collect(
      grpc::CallbackServerContext*, EchoResponse* response) override {
    return new CollectReactor(response);
  }
  grpc::ServerWriteReactor<EchoResponse>* Expand(
      grpc::CallbackServerContext*, const EchoRequest* request) override {
    return new ExpandReactor(*request);
  }
  grpc::ServerBidiReactor<EchoRequest, EchoResponse>* Converse(
      grpc::CallbackServerContext*) override {
    return new ConverseReactor();
  }
};

// The same service on the sync API, whose calls run on gRPC's thread pool.
class SyncEchoServiceImpl final : public EchoService::Service {
  grpc::Status Echo(grpc::ServerContext*, const EchoRequest* request,
                    EchoResponse* response) override {
    response->set_text(request->text());
    return RequestedStatus(*request);
  }
  grpc::Status Converse(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<EchoResponse, EchoRequest>* stream) override {
    EchoRequest request;
    while (stream->Read(&request)) {
      if (request.fail_code() != 0) return RequestedStatus(request);
      EchoResponse response;
      response.set_text(request.text());
      if (!stream->Write(response)) break;
    }
    return context->IsCancelled() ? grpc::Status::CANCELLED : grpc::Status::OK;
  }
};

prometheus::Labels MethodLabels(const std::string& type,
                                const std::string& method,
                                const std::string& service = kService) {
  return {
      {"grpc_type", type}, {"grpc_service", service}, {"grpc_method", method}};
}

prometheus::Labels WithCode(prometheus::Labels labels,
                            const std::string& code) {
  labels["grpc_code"] = code;
  return labels;
}

class GrpcServerMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(&service_); }

  void StartServer(grpc::Service* service) {
    ServerOptions options;
    options.interceptors.push_back(
        [this] { return metrics_.NewInterceptorFactory(); });
    auto server = GrpcServer::Start(options, {service});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    stub_ = EchoService::NewStub(channel_);
  }

  // Every call has completed once the server has shut down, so all counts
  // are final.
  void StopServer() {
    server_->Shutdown(absl::ZeroDuration());
    server_->Wait();
  }

  // Opens Converse and completes one echo, so the call is live on the
  // server.
  std::unique_ptr<grpc::ClientReaderWriter<EchoRequest, EchoResponse>>
  OpenConverse(grpc::ClientContext* context) {
    auto stream = stub_->Converse(context);
    EchoRequest request;
    request.set_text("one");
    EchoResponse response;
    EXPECT_TRUE(stream->Write(request));
    EXPECT_TRUE(stream->Read(&response));
    return stream;
  }

  // A unary call of `method` with an empty request, through the generic stub.
  grpc::Status CallGeneric(const std::string& method) {
    grpc::GenericStub generic(channel_);
    grpc::ClientContext context;
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    generic.UnaryCall(&context, method, {}, &request, &response,
                      [&](grpc::Status s) {
                        status = s;
                        done.Notify();
                      });
    done.WaitForNotification();
    return status;
  }

  double Value(absl::string_view name, const prometheus::Labels& labels) {
    return FindSample(registry_, name, labels).value_or(-1);
  }

  prometheus::Registry registry_;
  GrpcServerMetrics metrics_{registry_};
  EchoServiceImpl service_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<EchoService::Stub> stub_;
};

TEST_F(GrpcServerMetricsTest, UnaryCallsByCode) {
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext context;
    EchoRequest request;
    request.set_text("hi");
    EchoResponse response;
    ASSERT_TRUE(stub_->Echo(&context, request, &response).ok());
  }
  {
    grpc::ClientContext context;
    EchoRequest request;
    request.set_fail_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
    EchoResponse response;
    EXPECT_EQ(stub_->Echo(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  StopServer();

  const prometheus::Labels labels = MethodLabels("unary", "Echo");
  EXPECT_EQ(Value("grpc_server_started_total", labels), 4);
  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "OK")), 3);
  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "NotFound")),
            1);
  EXPECT_EQ(Value("grpc_server_msg_received_total", labels), 4);
  // As in go-grpc-prometheus, a failed unary call sends no message.
  EXPECT_EQ(Value("grpc_server_msg_sent_total", labels), 3);
  EXPECT_EQ(Value("grpc_server_handling_seconds_count", labels), 4);
  EXPECT_EQ(SumSamples(registry_, "grpc_server_handled_total",
                       {{"grpc_method", "Echo"}}),
            4);
}

TEST_F(GrpcServerMetricsTest, ClientStreamCountsEachMessage) {
  grpc::ClientContext context;
  EchoResponse response;
  auto writer = stub_->Collect(&context, &response);
  for (const char* text : {"a", "b", "c", "d"}) {
    EchoRequest request;
    request.set_text(text);
    ASSERT_TRUE(writer->Write(request));
  }
  ASSERT_TRUE(writer->WritesDone());
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(response.text(), "abcd");
  StopServer();

  const prometheus::Labels labels = MethodLabels("client_stream", "Collect");
  EXPECT_EQ(Value("grpc_server_started_total", labels), 1);
  EXPECT_EQ(Value("grpc_server_msg_received_total", labels), 4);
  EXPECT_EQ(Value("grpc_server_msg_sent_total", labels), 1);
  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "OK")), 1);
}

TEST_F(GrpcServerMetricsTest, ServerStreamCountsEachMessageAndFinalCode) {
  grpc::ClientContext context;
  EchoRequest request;
  request.set_repeat(5);
  request.set_fail_code(static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  auto reader = stub_->Expand(&context, request);
  EchoResponse response;
  int received = 0;
  while (reader->Read(&response)) ++received;
  EXPECT_EQ(received, 5);
  EXPECT_EQ(reader->Finish().error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  StopServer();

  const prometheus::Labels labels = MethodLabels("server_stream", "Expand");
  EXPECT_EQ(Value("grpc_server_started_total", labels), 1);
  EXPECT_EQ(Value("grpc_server_msg_received_total", labels), 1);
  EXPECT_EQ(Value("grpc_server_msg_sent_total", labels), 5);
  EXPECT_EQ(
      Value("grpc_server_handled_total", WithCode(labels, "ResourceExhausted")),
      1);
  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "OK")), -1);
}

TEST_F(GrpcServerMetricsTest, BidiStreamCountedAtStartAndAtFinish) {
  const prometheus::Labels labels = MethodLabels("bidi_stream", "Converse");
  grpc::ClientContext context;
  auto stream = OpenConverse(&context);
  EchoRequest request;
  EchoResponse response;

  // Open stream: started and its traffic are visible, handled is not.
  EXPECT_EQ(Value("grpc_server_started_total", labels), 1);
  EXPECT_EQ(Value("grpc_server_msg_received_total", labels), 1);
  EXPECT_EQ(SumSamples(registry_, "grpc_server_handled_total",
                       {{"grpc_method", "Converse"}}),
            0);
  EXPECT_EQ(Value("grpc_server_handling_seconds_count", labels), 0);

  request.set_text("two");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&response));
  ASSERT_TRUE(stream->Finish().ok());
  StopServer();

  EXPECT_EQ(Value("grpc_server_started_total", labels), 1);
  EXPECT_EQ(Value("grpc_server_msg_received_total", labels), 2);
  EXPECT_EQ(Value("grpc_server_msg_sent_total", labels), 2);
  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "OK")), 1);
  EXPECT_EQ(Value("grpc_server_handling_seconds_count", labels), 1);
}

TEST_F(GrpcServerMetricsTest, CancelledStreamIsHandledOnce) {
  const prometheus::Labels labels = MethodLabels("bidi_stream", "Converse");
  grpc::ClientContext context;
  auto stream = OpenConverse(&context);
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  StopServer();

  EXPECT_EQ(Value("grpc_server_started_total", labels), 1);
  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "Canceled")),
            1);
  EXPECT_EQ(SumSamples(registry_, "grpc_server_handled_total",
                       {{"grpc_method", "Converse"}}),
            1);
  EXPECT_EQ(Value("grpc_server_handling_seconds_count", labels), 1);
}

TEST_F(GrpcServerMetricsTest, ExpiredDeadlineIsRecordedAsSuch) {
  const prometheus::Labels labels = MethodLabels("bidi_stream", "Converse");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(300));
  auto stream = OpenConverse(&context);
  EchoResponse response;
  // The server waits for the next request until the deadline ends the call.
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  StopServer();

  EXPECT_EQ(
      Value("grpc_server_handled_total", WithCode(labels, "DeadlineExceeded")),
      1);
  EXPECT_EQ(SumSamples(registry_, "grpc_server_handled_total",
                       {{"grpc_method", "Converse"}}),
            1);
}

TEST_F(GrpcServerMetricsTest, UnknownMethodsShareOneBoundedLabel) {
  for (const char* method : {"/im.testing.v1.EchoService/NoSuchMethod",
                             "/probe.Service/x1", "/probe.Service/x2"}) {
    EXPECT_EQ(CallGeneric(method).error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << method;
  }
  StopServer();

  for (const prometheus::MetricFamily& family : registry_.Collect()) {
    for (const prometheus::ClientMetric& metric : family.metric) {
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        EXPECT_NE(label.value, "NoSuchMethod");
        EXPECT_NE(label.value, "probe.Service");
      }
    }
  }
  EXPECT_EQ(
      SumSamples(registry_, "grpc_server_started_total",
                 {{"grpc_service", "unknown"}, {"grpc_method", "unknown"}}),
      3);
  EXPECT_EQ(
      SumSamples(registry_, "grpc_server_handled_total",
                 {{"grpc_service", "unknown"}, {"grpc_code", "Unimplemented"}}),
      3);
}

TEST_F(GrpcServerMetricsTest, HealthChecksAreLabelledByTheirMethod) {
  const grpc::Status status = CallGeneric("/grpc.health.v1.Health/Check");
  ASSERT_TRUE(status.ok()) << status.error_message();
  StopServer();

  EXPECT_EQ(
      Value("grpc_server_handled_total",
            WithCode(MethodLabels("unary", "Check", "grpc.health.v1.Health"),
                     "OK")),
      1);
}

TEST_F(GrpcServerMetricsTest, InitializeServiceCreatesZeroSeries) {
  ASSERT_TRUE(metrics_.InitializeService(kService).ok());
  EXPECT_EQ(Value("grpc_server_started_total", MethodLabels("unary", "Echo")),
            0);
  EXPECT_EQ(Value("grpc_server_handled_total",
                  WithCode(MethodLabels("bidi_stream", "Converse"), "OK")),
            0);
  EXPECT_EQ(Value("grpc_server_msg_sent_total",
                  MethodLabels("client_stream", "Collect")),
            0);
  EXPECT_EQ(Value("grpc_server_handling_seconds_count",
                  MethodLabels("server_stream", "Expand")),
            0);
  EXPECT_EQ(metrics_.InitializeService("no.such.Service").code(),
            absl::StatusCode::kNotFound);
}

class SyncGrpcServerMetricsTest : public GrpcServerMetricsTest {
 protected:
  void SetUp() override { StartServer(&sync_service_); }

  SyncEchoServiceImpl sync_service_;
};

TEST_F(SyncGrpcServerMetricsTest, UnaryCallsByCode) {
  for (int code : {0, 0, static_cast<int>(grpc::StatusCode::ALREADY_EXISTS)}) {
    grpc::ClientContext context;
    EchoRequest request;
    request.set_fail_code(code);
    EchoResponse response;
    EXPECT_EQ(static_cast<int>(
                  stub_->Echo(&context, request, &response).error_code()),
              code);
  }
  StopServer();

  const prometheus::Labels labels = MethodLabels("unary", "Echo");
  EXPECT_EQ(Value("grpc_server_started_total", labels), 3);
  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "OK")), 2);
  EXPECT_EQ(
      Value("grpc_server_handled_total", WithCode(labels, "AlreadyExists")), 1);
  EXPECT_EQ(Value("grpc_server_msg_received_total", labels), 3);
  EXPECT_EQ(Value("grpc_server_msg_sent_total", labels), 2);
}

TEST_F(SyncGrpcServerMetricsTest, StreamCountedAtStartAndAtFinish) {
  const prometheus::Labels labels = MethodLabels("bidi_stream", "Converse");
  grpc::ClientContext context;
  auto stream = stub_->Converse(&context);
  EchoRequest request;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Write(request));
    EchoResponse response;
    ASSERT_TRUE(stream->Read(&response));
  }
  EXPECT_EQ(Value("grpc_server_started_total", labels), 1);
  EXPECT_EQ(SumSamples(registry_, "grpc_server_handled_total",
                       {{"grpc_method", "Converse"}}),
            0);
  request.set_fail_code(static_cast<int>(grpc::StatusCode::ABORTED));
  ASSERT_TRUE(stream->Write(request));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::ABORTED);
  StopServer();

  EXPECT_EQ(Value("grpc_server_msg_received_total", labels), 4);
  EXPECT_EQ(Value("grpc_server_msg_sent_total", labels), 3);
  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "Aborted")), 1);
  EXPECT_EQ(SumSamples(registry_, "grpc_server_handled_total",
                       {{"grpc_method", "Converse"}}),
            1);
}

TEST_F(SyncGrpcServerMetricsTest, CancelledStreamIsHandledOnce) {
  const prometheus::Labels labels = MethodLabels("bidi_stream", "Converse");
  grpc::ClientContext context;
  auto stream = OpenConverse(&context);
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  StopServer();

  EXPECT_EQ(Value("grpc_server_handled_total", WithCode(labels, "Canceled")),
            1);
  EXPECT_EQ(SumSamples(registry_, "grpc_server_handled_total",
                       {{"grpc_method", "Converse"}}),
            1);
}

TEST(GrpcServerMetricsLabelsTest, CodesUseGoSpelling) {
  EXPECT_STREQ(GrpcServerMetrics::CodeLabel(grpc::StatusCode::OK), "OK");
  EXPECT_STREQ(GrpcServerMetrics::CodeLabel(grpc::StatusCode::CANCELLED),
               "Canceled");
  EXPECT_STREQ(
      GrpcServerMetrics::CodeLabel(grpc::StatusCode::DEADLINE_EXCEEDED),
      "DeadlineExceeded");
  EXPECT_STREQ(GrpcServerMetrics::CodeLabel(grpc::StatusCode::UNAUTHENTICATED),
               "Unauthenticated");
  EXPECT_STREQ(GrpcServerMetrics::CodeLabel(static_cast<grpc::StatusCode>(99)),
               "Unknown");
}

}  // namespace
}  // namespace im::observability
