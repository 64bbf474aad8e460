#include "services/common/request_parse_interceptor.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "im/testing/v1/echo.grpc.pb.h"
#include "services/common/grpc_server.h"

namespace im {
namespace {

namespace v1 = ::im::testing::v1;

// An EchoRequest whose `text` (field 1, a proto3 string) is not UTF-8:
// protobuf refuses to parse it.
std::string InvalidUtf8Request() {
  const std::string text = "\xff\xfe";
  std::string wire;
  wire.push_back(0x0a);  // field 1, length-delimited
  wire.push_back(static_cast<char>(text.size()));
  return wire + text;
}

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

class CallbackEcho final : public v1::EchoService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const v1::EchoRequest* request,
                                 v1::EchoResponse* response) override {
    response->set_text(request->text());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(
        request->fail_code() == 0
            ? grpc::Status::OK
            : grpc::Status(static_cast<grpc::StatusCode>(request->fail_code()),
                           "asked to fail"));
    return reactor;
  }
};

class SyncEcho final : public v1::EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const v1::EchoRequest* request,
                    v1::EchoResponse* response) override {
    response->set_text(request->text());
    if (request->fail_code() != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(request->fail_code()),
                          "asked to fail");
    }
    return grpc::Status::OK;
  }
  grpc::Status Expand(grpc::ServerContext*, const v1::EchoRequest* request,
                      grpc::ServerWriter<v1::EchoResponse>* writer) override {
    v1::EchoResponse response;
    response.set_text(request->text());
    for (int i = 0; i < request->repeat(); ++i) writer->Write(response);
    return grpc::Status::OK;
  }
};

class RequestParseInterceptorTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      service_ = std::make_unique<CallbackEcho>();
    } else {
      service_ = std::make_unique<SyncEcho>();
    }
    auto server = GrpcServer::Start(ServerOptions(), {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
  }

  grpc::Status RawEcho(const std::string& bytes) {
    grpc::internal::RpcMethod method("/im.testing.v1.EchoService/Echo",
                                     grpc::internal::RpcMethod::NORMAL_RPC);
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer,
                                             grpc::ByteBuffer>(
        channel_.get(), method, &context, Buffer(bytes), &response);
  }

  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_P(RequestParseInterceptorTest, InvalidUtf8RequestIsInvalidArgument) {
  grpc::Status status = RawEcho(InvalidUtf8Request());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
}

TEST_P(RequestParseInterceptorTest, MalformedWireIsInvalidArgument) {
  // A length prefix running past the end of the message.
  grpc::Status status = RawEcho(std::string("\x0a\x7f" "abc", 5));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
}

TEST_P(RequestParseInterceptorTest, HandlersAnswerStaysUntouched) {
  auto stub = v1::EchoService::NewStub(channel_);
  v1::EchoRequest request;
  request.set_text("h\xc3\xa9");
  v1::EchoResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Echo(&context, request, &response).ok());
    EXPECT_EQ(response.text(), "h\xc3\xa9");
  }
  // A handler's own INTERNAL is a server fault and must stay one.
  request.set_fail_code(static_cast<int>(grpc::StatusCode::INTERNAL));
  grpc::ClientContext context;
  EXPECT_EQ(stub->Echo(&context, request, &response).error_code(),
            grpc::StatusCode::INTERNAL);
}

INSTANTIATE_TEST_SUITE_P(CallbackAndSync, RequestParseInterceptorTest,
                         ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Callback" : "Sync";
                         });

TEST(RequestParseInterceptorStreamTest, ServerStreamingRequestThatDoesNotParse) {
  SyncEcho service;
  auto server = GrpcServer::Start(ServerOptions(), {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel((*server)->address(),
                                     grpc::InsecureChannelCredentials());
  grpc::internal::RpcMethod method("/im.testing.v1.EchoService/Expand",
                                   grpc::internal::RpcMethod::SERVER_STREAMING);
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
          channel.get(), method, &context, Buffer(InvalidUtf8Request())));
  grpc::ByteBuffer ignored;
  EXPECT_FALSE(reader->Read(&ignored));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace im
