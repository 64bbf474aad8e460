#include "services/common/service_host.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "observability/sampled_metrics.h"
#include "observability/scrape_client.h"
#include "prometheus/counter.h"
#include "services/common/health_probe.h"

namespace im {
namespace {

constexpr char kServiceName[] = "im.auth.v1.AuthService";

// Answers WhoAmI so a test can tell the service was registered (an
// unregistered method would also answer UNIMPLEMENTED).
class WhoAmIService final : public auth::v1::AuthService::Service {
 public:
  grpc::Status WhoAmI(grpc::ServerContext*, const auth::v1::WhoAmIRequest*,
                      auth::v1::WhoAmIResponse* response) override {
    response->set_session_id(7);
    return grpc::Status::OK;
  }
};

absl::StatusOr<std::unique_ptr<HostedService>> BundleOfWhoAmI() {
  auto bundle = std::make_unique<ServiceBundle>();
  bundle->Serve(bundle->Own(std::make_unique<WhoAmIService>()));
  return bundle;
}

std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

// Records what happens during shutdown, from inside the hooks.
class RecordingService final : public HostedService {
 public:
  explicit RecordingService(std::vector<std::string>* events)
      : events_(events) {}

  void set_address(const std::string& address) { address_ = address; }

  std::vector<grpc::Service*> GrpcServices() override { return {&service_}; }

  void Drain() override {
    // The server still answers, but health already says NOT_SERVING.
    absl::StatusOr<HealthStatus> health =
        CheckHealth(ChannelTo(address_), kServiceName, absl::Seconds(5));
    events_->push_back(absl::StrCat(
        "drain:", health.ok() ? HealthStatusName(*health) : "call failed"));
  }

  void Stop() override {
    // The listener is closed: a fresh connection fails.
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    auth::v1::WhoAmIResponse response;
    const grpc::Status status =
        auth::v1::AuthService::NewStub(ChannelTo(address_))
            ->WhoAmI(&context, {}, &response);
    events_->push_back(absl::StrCat("stop:", status.error_code()));
  }

 private:
  std::vector<std::string>* events_;
  std::string address_;
  WhoAmIService service_;
};

ServiceHostOptions LoopbackOptions() {
  ServiceHostOptions options;
  options.server.name = kServiceName;
  options.server.listen_address = "127.0.0.1:0";
  options.drain_grace = absl::Seconds(1);
  return options;
}

TEST(ServiceHostTest, ServesUntilStopThenDrainsInOrder) {
  std::vector<std::string> events;
  RecordingService* recording = nullptr;
  absl::Notification serving;
  absl::Notification stop;
  std::string address;

  ServiceHostOptions options = LoopbackOptions();
  options.on_serving = [&](const std::string& bound) {
    address = bound;
    recording->set_address(bound);
    serving.Notify();
  };
  options.wait_for_stop = [&] { stop.WaitForNotification(); };

  int exit_code = -1;
  std::thread host([&] {
    exit_code = RunService(
        options, [&]() -> absl::StatusOr<std::unique_ptr<HostedService>> {
          auto service = std::make_unique<RecordingService>(&events);
          recording = service.get();
          return service;
        });
  });
  serving.WaitForNotification();

  absl::StatusOr<HealthStatus> health =
      CheckHealth(ChannelTo(address), kServiceName, absl::Seconds(5));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kServing);
  grpc::ClientContext context;
  auth::v1::WhoAmIResponse response;
  const grpc::Status status = auth::v1::AuthService::NewStub(ChannelTo(address))
                                  ->WhoAmI(&context, {}, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.session_id(), 7u);

  stop.Notify();
  host.join();
  EXPECT_EQ(exit_code, 0);
  EXPECT_EQ(events, (std::vector<std::string>{
                        "drain:NOT_SERVING",
                        absl::StrCat("stop:", grpc::StatusCode::UNAVAILABLE)}));
}

TEST(ServiceHostTest, FactoryFailureExitsOneWithoutServing) {
  ServiceHostOptions options = LoopbackOptions();
  bool served = false;
  options.on_serving = [&](const std::string&) { served = true; };
  options.wait_for_stop = [] {};
  const int exit_code = RunService(
      options, []() -> absl::StatusOr<std::unique_ptr<HostedService>> {
        return absl::NotFoundError("no key file");
      });
  EXPECT_EQ(exit_code, 1);
  EXPECT_FALSE(served);
}

TEST(ServiceHostTest, UnbindableAddressExitsOne) {
  ServiceHostOptions options = LoopbackOptions();
  options.server.listen_address = "256.1.1.1:1";
  options.wait_for_stop = [] {};
  const int exit_code = RunService(options, &BundleOfWhoAmI);
  EXPECT_EQ(exit_code, 1);
}

// A loopback port that was free a moment ago (the metrics endpoint reports
// no bound port back to the host's caller).
int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

TEST(ServiceHostTest, ServesRpcProcessAndServiceMetrics) {
  ServiceHostOptions options = LoopbackOptions();
  options.metrics_listen = absl::StrCat("127.0.0.1:", UnusedPort());
  absl::Notification serving;
  absl::Notification stop;
  std::string address;
  options.on_serving = [&](const std::string& bound) {
    address = bound;
    serving.Notify();
  };
  options.wait_for_stop = [&] { stop.WaitForNotification(); };
  int exit_code = -1;
  std::thread host([&] {
    exit_code = RunService(
        options, [](observability::ServerMetrics& metrics)
                     -> absl::StatusOr<std::unique_ptr<HostedService>> {
          prometheus::BuildCounter()
              .Name("im_test_built_total")
              .Help("Services built.")
              .Register(metrics.registry())
              .Add({})
              .Increment();
          auto sampled = std::make_shared<observability::SampledMetrics>();
          sampled->AddGauge("im_test_sampled", "Read at scrape time.",
                            [] { return 7; });
          metrics.AddCollectable(std::move(sampled));
          return BundleOfWhoAmI();
        });
  });
  serving.WaitForNotification();
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext context;
    auth::v1::WhoAmIResponse response;
    ASSERT_TRUE(auth::v1::AuthService::NewStub(ChannelTo(address))
                    ->WhoAmI(&context, {}, &response)
                    .ok());
  }

  absl::StatusOr<std::string> scraped =
      observability::Scrape(options.metrics_listen);
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_NE(scraped->find("grpc_server_started_total{grpc_method=\"WhoAmI\","
                          "grpc_service=\"im.auth.v1.AuthService\","
                          "grpc_type=\"unary\"} 2"),
            std::string::npos)
      << *scraped;
  // Methods never called have zero series from the start.
  EXPECT_NE(scraped->find("grpc_server_handled_total{grpc_code=\"OK\","
                          "grpc_method=\"Login\","
                          "grpc_service=\"im.auth.v1.AuthService\","
                          "grpc_type=\"unary\"} 0"),
            std::string::npos);
  EXPECT_NE(scraped->find("im_test_built_total 1"), std::string::npos);
  EXPECT_NE(scraped->find("im_test_sampled 7"), std::string::npos);
  EXPECT_NE(scraped->find("process_resident_memory_bytes"), std::string::npos);

  stop.Notify();
  host.join();
  EXPECT_EQ(exit_code, 0);
}

TEST(ServiceHostTest, UnservableMetricsAddressExitsOne) {
  ServiceHostOptions options = LoopbackOptions();
  options.metrics_listen = "no-port";
  bool served = false;
  options.on_serving = [&](const std::string&) { served = true; };
  options.wait_for_stop = [] {};
  EXPECT_EQ(RunService(options, &BundleOfWhoAmI), 1);
  EXPECT_FALSE(served);
}

// Records its own destruction into a shared log.
class DestructionLogger {
 public:
  DestructionLogger(std::string name, std::vector<std::string>* log)
      : name_(std::move(name)), log_(log) {}
  ~DestructionLogger() { log_->push_back(name_); }

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

TEST(ServiceBundleTest, RunsHooksInOrderAndDestroysInReverse) {
  std::vector<std::string> log;
  {
    ServiceBundle bundle;
    bundle.Own(std::make_unique<DestructionLogger>("store", &log));
    bundle.Own(std::make_unique<DestructionLogger>("service", &log));
    WhoAmIService* service = bundle.Own(std::make_unique<WhoAmIService>());
    bundle.Serve(service);
    bundle.OnDrain([&] { log.push_back("drain 1"); });
    bundle.OnDrain([&] { log.push_back("drain 2"); });
    bundle.OnStop([&] { log.push_back("stop"); });
    EXPECT_EQ(bundle.GrpcServices(), std::vector<grpc::Service*>{service});
    bundle.Drain();
    bundle.Stop();
  }
  EXPECT_EQ(log, (std::vector<std::string>{"drain 1", "drain 2", "stop",
                                           "service", "store"}));
}

// The default stop request is SIGTERM, as sent by scripts/run and process
// supervisors. main() below blocks it before any thread exists, like a
// service binary does.
TEST(ServiceHostTest, SigtermStopsTheServiceCleanly) {
  ServiceHostOptions options = LoopbackOptions();
  absl::Notification serving;
  std::string address;
  options.on_serving = [&](const std::string& bound) {
    address = bound;
    serving.Notify();
  };
  int exit_code = -1;
  std::thread host([&] { exit_code = RunService(options, &BundleOfWhoAmI); });
  serving.WaitForNotification();
  absl::StatusOr<HealthStatus> health =
      CheckHealth(ChannelTo(address), "", absl::Seconds(5));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kServing);

  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  host.join();
  EXPECT_EQ(exit_code, 0);
}

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  im::BlockTerminationSignals();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
