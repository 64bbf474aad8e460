#include "observability/server_metrics.h"

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "observability/metric_reader.h"
#include "observability/sampled_metrics.h"
#include "observability/scrape_client.h"
#include "prometheus/counter.h"

namespace im::observability {
namespace {

TEST(ServerMetricsTest, ServesRegistryAndProcessMetrics) {
  auto metrics = ServerMetrics::Create({"127.0.0.1:0"});
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_GT((*metrics)->port(), 0);
  EXPECT_EQ((*metrics)->address(),
            absl::StrCat("127.0.0.1:", (*metrics)->port()));
  prometheus::BuildCounter()
      .Name("im_test_events_total")
      .Help("Events.")
      .Register((*metrics)->registry())
      .Add({{"kind", "a"}})
      .Increment(3);

  absl::StatusOr<std::string> scraped_body = Scrape((*metrics)->address());
  ASSERT_TRUE(scraped_body.ok()) << scraped_body.status();
  const std::string& response = *scraped_body;
  EXPECT_NE(response.find("im_test_events_total{kind=\"a\"} 3"),
            std::string::npos)
      << response;
  EXPECT_NE(response.find("# TYPE process_cpu_seconds_total counter"),
            std::string::npos);
  EXPECT_NE(response.find("# TYPE process_open_fds gauge"), std::string::npos);

  const std::string scraped = (*metrics)->Scrape();
  EXPECT_NE(scraped.find("im_test_events_total{kind=\"a\"} 3"),
            std::string::npos);
  EXPECT_NE(scraped.find("process_resident_memory_bytes"), std::string::npos);
}

TEST(ServerMetricsTest, WithoutAddressRecordsButServesNothing) {
  auto metrics = ServerMetrics::Create({});
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ((*metrics)->port(), 0);
  EXPECT_EQ((*metrics)->address(), "");
  prometheus::BuildCounter()
      .Name("im_test_events_total")
      .Help("Events.")
      .Register((*metrics)->registry())
      .Add({})
      .Increment();
  EXPECT_EQ(FindSample((*metrics)->registry(), "im_test_events_total"), 1);
}

TEST(ServerMetricsTest, RejectsBadAddresses) {
  for (const char* address :
       {"9151", ":9151", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:-1"}) {
    EXPECT_EQ(ServerMetrics::Create({address}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << address;
  }
}

TEST(ServerMetricsTest, PortInUseIsUnavailable) {
  auto first = ServerMetrics::Create({"127.0.0.1:0"});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second =
      ServerMetrics::Create({absl::StrCat("127.0.0.1:", (*first)->port())});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ServerMetricsTest, ServesSampledMetricsUntilStopped) {
  auto metrics = ServerMetrics::Create({"127.0.0.1:0"});
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  std::atomic<int> open_streams{4};
  auto sampled = std::make_shared<SampledMetrics>();
  sampled->AddGauge("im_test_open_streams", "Open streams.",
                    [&] { return open_streams.load(); });
  sampled->AddCounter("im_test_frames_total", "Frames.", [] { return 12; });
  (*metrics)->AddCollectable(sampled);

  absl::StatusOr<std::string> body = Scrape((*metrics)->address());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_NE(body->find("# TYPE im_test_open_streams gauge\n"
                       "im_test_open_streams 4\n"),
            std::string::npos)
      << *body;
  EXPECT_NE(body->find("# TYPE im_test_frames_total counter\n"
                       "im_test_frames_total 12\n"),
            std::string::npos)
      << *body;
  open_streams = 2;
  EXPECT_NE((*metrics)->Scrape().find("im_test_open_streams 2\n"),
            std::string::npos);

  const std::string address = (*metrics)->address();
  (*metrics)->StopServing();
  (*metrics)->StopServing();
  EXPECT_EQ(Scrape(address).status().code(), absl::StatusCode::kUnavailable);
  // Still recorded and readable in process.
  EXPECT_NE((*metrics)->Scrape().find("im_test_frames_total 12"),
            std::string::npos);
}

TEST(ServerMetricsTest, UnknownPathIsNotServed) {
  auto metrics = ServerMetrics::Create({"127.0.0.1:0"});
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(Scrape((*metrics)->address(), "/nothing").status().code(),
            absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace im::observability
