#include "services/common/health_probe.h"

#include <grpcpp/grpcpp.h>

#include "gtest/gtest.h"
#include "im/testing/v1/echo.grpc.pb.h"
#include "services/common/grpc_server.h"

namespace im {
namespace {

// A registered service (every method UNIMPLEMENTED): gRPC needs one for
// the server to poll, as every real server has.
grpc::Service* EchoService() {
  static auto* const echo = new testing::v1::EchoService::CallbackService();
  return echo;
}

std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

TEST(HealthProbeTest, ReportsServingNotServingAndUnknownService) {
  ServerOptions options;
  // Longer than 127 bytes: the name's length takes a two-byte varint.
  options.name = "im.test." + std::string(150, 'x');
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(options, {EchoService()});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = ChannelTo((*server)->address());

  EXPECT_EQ(CheckHealth(channel, "", absl::Seconds(5)).value(),
            HealthStatus::kServing);
  EXPECT_EQ(CheckHealth(channel, options.name, absl::Seconds(5)).value(),
            HealthStatus::kServing);
  EXPECT_EQ(
      CheckHealth(channel, "no.such.Service", absl::Seconds(5)).status().code(),
      absl::StatusCode::kNotFound);

  (*server)->Drain();
  EXPECT_EQ(CheckHealth(channel, options.name, absl::Seconds(5)).value(),
            HealthStatus::kNotServing);
}

TEST(HealthProbeTest, UnreachableServerIsDeadlineExceeded) {
  // Nothing listens on port 1; wait_for_ready keeps retrying until the
  // deadline.
  EXPECT_EQ(CheckHealth(ChannelTo("127.0.0.1:1"), "", absl::Milliseconds(300))
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(HealthProbeTest, NamesEveryStatus) {
  EXPECT_EQ(HealthStatusName(HealthStatus::kServing), "SERVING");
  EXPECT_EQ(HealthStatusName(HealthStatus::kNotServing), "NOT_SERVING");
  EXPECT_EQ(HealthStatusName(HealthStatus::kServiceUnknown), "SERVICE_UNKNOWN");
  EXPECT_EQ(HealthStatusName(HealthStatus::kUnknown), "UNKNOWN");
}

}  // namespace
}  // namespace im
