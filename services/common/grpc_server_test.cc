#include "services/common/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/synchronization/notification.h"

#include "gtest/gtest.h"

namespace im {
namespace {

// The health service speaks grpc.health.v1; call it through the generic
// stub with hand-encoded messages so no health proto is needed here.
// HealthCheckRequest{service = name} and HealthCheckResponse{status}.
int CheckHealth(grpc::Channel* channel, const std::string& service) {
  grpc::GenericStub stub(channel->shared_from_this());
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0A);
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1);
  grpc::ByteBuffer out;
  grpc::ClientContext context;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", {}, &in, &out,
                 [&](grpc::Status s) {
                   status = s;
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) return -static_cast<int>(status.error_code());
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(out.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // Field 1 varint: 0x08 <status>; absent means UNKNOWN (0).
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;
}

TEST(GrpcServerTest, ServesHealthAndDrains) {
  ServerOptions options;
  options.name = "im.test.Service";
  auto server = GrpcServer::Start(options, {});
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

TEST(GrpcServerTest, FailsOnUnbindableAddress) {
  ServerOptions options;
  options.listen_address = "256.1.1.1:1";
  EXPECT_EQ(GrpcServer::Start(options, {}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(GrpcServerTest, FailsOnMissingCertificates) {
  ServerOptions options;
  options.tls.cert_file = "/nonexistent/cert.pem";
  options.tls.key_file = "/nonexistent/key.pem";
  EXPECT_EQ(GrpcServer::Start(options, {}).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace im
