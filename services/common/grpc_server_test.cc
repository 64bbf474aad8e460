#include "services/common/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "im/testing/v1/echo.grpc.pb.h"
#include "services/common/byte_buffer.h"
#include "services/common/health_probe.h"
#include "services/common/status.h"

namespace im {
namespace {

// A registered service (every method UNIMPLEMENTED): gRPC needs one for
// the server to poll, as every real server has.
grpc::Service* EchoService() {
  static auto* const echo = new testing::v1::EchoService::CallbackService();
  return echo;
}

// Health status as a number, or minus the call's error code.
int CheckHealth(grpc::Channel* channel, const std::string& service) {
  absl::StatusOr<HealthStatus> status =
      im::CheckHealth(channel->shared_from_this(), service, absl::Seconds(5));
  if (!status.ok()) return -static_cast<int>(status.status().code());
  return static_cast<int>(*status);
}

TEST(GrpcServerTest, ServesHealthAndDrains) {
  ServerOptions options;
  options.name = "im.test.Service";
  auto server = GrpcServer::Start(options, {EchoService()});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);
  auto channel = grpc::CreateChannel((*server)->address(),
                                     grpc::InsecureChannelCredentials());
  constexpr int kServing = 1;
  constexpr int kNotServing = 2;
  EXPECT_EQ(CheckHealth(channel.get(), ""), kServing);
  EXPECT_EQ(CheckHealth(channel.get(), "im.test.Service"), kServing);
  EXPECT_EQ(CheckHealth(channel.get(), "no.such.Service"),
            -static_cast<int>(grpc::StatusCode::NOT_FOUND));
  (*server)->Drain();
  EXPECT_EQ(CheckHealth(channel.get(), ""), kNotServing);
  EXPECT_EQ(CheckHealth(channel.get(), "im.test.Service"), kNotServing);
  (*server)->Shutdown(absl::Seconds(1));
  (*server)->Wait();
}

// Asks grpc.reflection to list the services (a ServerReflectionRequest with
// list_services = "", written by hand: field 7, empty string) and returns
// the first response's bytes, or the call's error code.
absl::StatusOr<std::string> ListServicesByReflection(
    const std::string& address) {
  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  grpc::CompletionQueue queue;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &queue);
  // Runs one step and waits for it: each step has its own tag.
  auto step = [&queue](int tag) {
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(queue.Next(&got, &ok));
    EXPECT_EQ(got, reinterpret_cast<void*>(tag));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  step(1);
  grpc::Slice request(std::string("\x3a\x00", 2));
  call->Write(grpc::ByteBuffer(&request, 1), reinterpret_cast<void*>(2));
  step(2);
  call->WritesDone(reinterpret_cast<void*>(3));
  step(3);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  const bool got_response = step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  queue.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (queue.Next(&ignored_tag, &ignored_ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);
  if (!got_response) return absl::InternalError("no response");
  return ByteBufferToString(response);
}

TEST(GrpcServerTest, ReflectionIsOffUnlessAskedFor) {
  ServerOptions options;
  auto server = GrpcServer::Start(options, {EchoService()});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(ListServicesByReflection((*server)->address()).status().code(),
            absl::StatusCode::kUnimplemented);
  (*server)->Shutdown(absl::Seconds(1));
  (*server)->Wait();

  // Another server of the same process, with reflection: lists health.
  options.reflection = true;
  auto with_reflection = GrpcServer::Start(options, {EchoService()});
  ASSERT_TRUE(with_reflection.ok()) << with_reflection.status();
  absl::StatusOr<std::string> listed =
      ListServicesByReflection((*with_reflection)->address());
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_NE(listed->find("grpc.health.v1.Health"), std::string::npos);
  (*with_reflection)->Shutdown(absl::Seconds(1));
  (*with_reflection)->Wait();

  // And reflection stays off for servers started after it.
  options.reflection = false;
  auto later = GrpcServer::Start(options, {EchoService()});
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(ListServicesByReflection((*later)->address()).status().code(),
            absl::StatusCode::kUnimplemented);
  (*later)->Shutdown(absl::Seconds(1));
  (*later)->Wait();
}

TEST(GrpcServerTest, RefusesToStartWithoutServices) {
  EXPECT_EQ(GrpcServer::Start(ServerOptions{}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GrpcServerTest, FailsOnUnbindableAddress) {
  ServerOptions options;
  options.listen_address = "256.1.1.1:1";
  EXPECT_EQ(GrpcServer::Start(options, {EchoService()}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(GrpcServerTest, FailsOnMissingCertificates) {
  ServerOptions options;
  options.tls.cert_file = "/nonexistent/cert.pem";
  options.tls.key_file = "/nonexistent/key.pem";
  EXPECT_EQ(GrpcServer::Start(options, {EchoService()}).status().code(),
            absl::StatusCode::kNotFound);
}

// Two servers behind one comma-separated address: calls go round robin
// to both (one is draining, so the health answers tell them apart), and
// once one is gone every call reaches the other.
TEST(MakeChannelTest, AddressListSpreadsCallsAndSkipsADeadNode) {
  ServerOptions options;
  options.name = "im.test.Service";
  auto serving = GrpcServer::Start(options, {EchoService()});
  auto draining = GrpcServer::Start(options, {EchoService()});
  ASSERT_TRUE(serving.ok()) << serving.status();
  ASSERT_TRUE(draining.ok()) << draining.status();
  (*draining)->Drain();
  auto channel = MakeChannel(
      absl::StrCat((*serving)->address(), ",", (*draining)->address()),
      TlsOptions());
  ASSERT_TRUE(channel.ok()) << channel.status();
  constexpr int kServing = 1;
  constexpr int kNotServing = 2;
  bool saw_serving = false;
  bool saw_draining = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!(saw_serving && saw_draining) && absl::Now() < deadline) {
    const int health = CheckHealth(channel->get(), "");
    saw_serving |= health == kServing;
    saw_draining |= health == kNotServing;
  }
  EXPECT_TRUE(saw_serving);
  EXPECT_TRUE(saw_draining);

  (*draining)->Shutdown(absl::Seconds(1));
  (*draining)->Wait();
  draining->reset();
  // The dead node may take a failed call or two to be noticed; after that
  // every call goes to the live one.
  for (int i = 0; i < 3; ++i) CheckHealth(channel->get(), "");
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(CheckHealth(channel->get(), ""), kServing) << "call " << i;
  }
  (*serving)->Shutdown(absl::Seconds(1));
  (*serving)->Wait();
}

TEST(MakeChannelTest, RejectsBadAddressLists) {
  for (const char* list :
       {"127.0.0.1:1,", "127.0.0.1:1,localhost:2", "127.0.0.1:1,[::1]:2",
        "127.0.0.1,127.0.0.2:1", "127.0.0.1:0,127.0.0.1:2",
        "127.0.0.1:1,127.0.0.1:70000"}) {
    EXPECT_EQ(MakeChannel(list, TlsOptions()).status().code(),
              absl::StatusCode::kInvalidArgument)
        << list;
  }
  EXPECT_TRUE(MakeChannel("127.0.0.1:1,127.0.0.1:2", TlsOptions()).ok());
  EXPECT_TRUE(MakeChannel("[::1]:1,[::1]:2", TlsOptions()).ok());
}

}  // namespace
}  // namespace im
