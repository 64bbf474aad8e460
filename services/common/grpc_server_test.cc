#include "services/common/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include "gtest/gtest.h"
#include "services/common/health_probe.h"

namespace im {
namespace {

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
