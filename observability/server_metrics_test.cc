#include "observability/server_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "observability/metric_reader.h"
#include "prometheus/counter.h"

namespace im::observability {
namespace {

// GET http://127.0.0.1:<port><path>; the whole response, headers included.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return "";
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, n);
  close(fd);
  return response;
}

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

  const std::string response = HttpGet((*metrics)->port(), "/metrics");
  EXPECT_NE(response.find("200 OK"), std::string::npos) << response;
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
  for (const char* address : {"9151", ":9151", "127.0.0.1:http",
                              "127.0.0.1:70000", "127.0.0.1:-1"}) {
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

}  // namespace
}  // namespace im::observability
