#include "observability/mysql_pool_metrics.h"

#include "gtest/gtest.h"
#include "observability/metric_reader.h"

namespace im::observability {
namespace {

class MysqlPoolMetricsTest : public ::testing::Test {
 protected:
  double Value(absl::string_view name, const prometheus::Labels& labels = {}) {
    return FindSample(registry_, name, labels).value_or(-1);
  }

  prometheus::Registry registry_;
  MysqlPoolMetrics metrics_{registry_};
};

TEST_F(MysqlPoolMetricsTest, UnlabelledSeriesExistFromTheStart) {
  EXPECT_EQ(Value("mysql_pool_size"), 0);
  EXPECT_EQ(Value("mysql_pool_in_use"), 0);
  EXPECT_EQ(Value("mysql_pool_open"), 0);
  EXPECT_EQ(Value("mysql_pool_waits_total"), 0);
  EXPECT_EQ(Value("mysql_pool_acquire_seconds_count"), 0);
  EXPECT_EQ(Value("mysql_pool_acquire_failures_total"), 0);
  EXPECT_EQ(Value("mysql_pool_connects_total", {{"result", "ok"}}), 0);
  EXPECT_EQ(Value("mysql_pool_connects_total", {{"result", "error"}}), 0);
  EXPECT_EQ(Value("mysql_pool_discards_total"), 0);
}

TEST_F(MysqlPoolMetricsTest, PoolEvents) {
  metrics_.SetPoolSize(16);
  metrics_.OnPoolState(3, 5);
  metrics_.OnAcquire(absl::Microseconds(50), false, absl::OkStatus());
  metrics_.OnAcquire(absl::Milliseconds(20), true, absl::OkStatus());
  metrics_.OnAcquire(absl::Seconds(5), true, absl::UnavailableError("timeout"));
  metrics_.OnConnect(absl::Milliseconds(2), absl::OkStatus());
  metrics_.OnConnect(absl::Milliseconds(2), absl::UnavailableError("down"));
  metrics_.OnConnect(absl::Milliseconds(2), absl::UnavailableError("down"));
  metrics_.OnDiscard();

  EXPECT_EQ(Value("mysql_pool_size"), 16);
  EXPECT_EQ(Value("mysql_pool_in_use"), 3);
  EXPECT_EQ(Value("mysql_pool_open"), 5);
  EXPECT_EQ(Value("mysql_pool_waits_total"), 2);
  EXPECT_EQ(Value("mysql_pool_acquire_failures_total"), 1);
  EXPECT_EQ(Value("mysql_pool_acquire_seconds_count"), 3);
  EXPECT_DOUBLE_EQ(Value("mysql_pool_acquire_seconds_sum"), 5.02005);
  EXPECT_EQ(Value("mysql_pool_connects_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(Value("mysql_pool_connects_total", {{"result", "error"}}), 2);
  EXPECT_EQ(Value("mysql_pool_discards_total"), 1);

  metrics_.OnPoolState(0, 4);
  EXPECT_EQ(Value("mysql_pool_in_use"), 0);
  EXPECT_EQ(Value("mysql_pool_open"), 4);
}

TEST_F(MysqlPoolMetricsTest, OperationsByName) {
  metrics_.OnOperation("log.append_messages", absl::Milliseconds(3),
                       absl::OkStatus(), 1);
  metrics_.OnOperation("log.append_messages", absl::Milliseconds(9),
                       absl::OkStatus(), 3);
  metrics_.OnOperation("log.append_messages", absl::Milliseconds(1),
                       absl::UnavailableError("lost"), 1);
  metrics_.OnOperation("users.get", absl::Microseconds(200), absl::OkStatus(),
                       1);

  const prometheus::Labels append = {{"operation", "log.append_messages"}};
  const prometheus::Labels get = {{"operation", "users.get"}};
  EXPECT_EQ(Value("mysql_query_duration_seconds_count", append), 3);
  EXPECT_DOUBLE_EQ(Value("mysql_query_duration_seconds_sum", append), 0.013);
  EXPECT_EQ(Value("mysql_query_errors_total", append), 1);
  EXPECT_EQ(Value("mysql_query_retries_total", append), 2);
  EXPECT_EQ(Value("mysql_query_duration_seconds_count", get), 1);
  EXPECT_EQ(Value("mysql_query_errors_total", get), 0);
  EXPECT_EQ(Value("mysql_query_retries_total", get), 0);
}

}  // namespace
}  // namespace im::observability
