#include "services/presence/presence_metrics.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "observability/metric_reader.h"
#include "services/presence/presence_test_support.h"
#include "storage/fake/fake_database.h"

namespace im::presence {
namespace {

using observability::FindSample;

constexpr absl::Duration kTtl = absl::Seconds(2);
// Generous: only a hung or broken service takes this long.
constexpr absl::Duration kWait = absl::Seconds(10);

class PresenceMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PresenceServiceImpl::Options options;
    options.lease_ttl = kTtl;
    options.tick = absl::Milliseconds(10);
    harness_ = std::make_unique<PresenceHarness>(&database_, options);
    harness_->Start();
    metrics_ = PresenceMetrics(*harness_->service());
  }

  void Open(const std::string& node, uint64_t user, uint64_t session) {
    v1::OpenLeaseRequest request;
    request.set_node_id(node);
    request.set_user_id(user);
    request.set_session_id(session);
    request.set_device_kind(auth::v1::DEVICE_KIND_MOBILE);
    request.set_device_name("phone");
    v1::OpenLeaseResponse response;
    const grpc::Status status = harness_->stub()->OpenLease(
        PresenceHarness::Context(harness_->InternalToken()).get(), request,
        &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  double Value(const std::string& name) {
    return FindSample(*metrics_, name).value_or(-1);
  }

  storage::FakeDatabase database_;
  std::unique_ptr<PresenceHarness> harness_;
  std::shared_ptr<observability::SampledMetrics> metrics_;
};

TEST_F(PresenceMetricsTest, StartsAtZero) {
  for (const char* name :
       {"im_presence_leases", "im_presence_users_online", "im_presence_nodes",
        "im_presence_subscriptions", "im_presence_lease_expiries_total",
        "im_presence_updates_sent_total", "im_presence_update_batches_total",
        "im_presence_last_seen_writes_total",
        "im_presence_last_seen_write_failures_total"}) {
    EXPECT_EQ(Value(name), 0) << name;
  }
}

TEST_F(PresenceMetricsTest, LeasesOnlineAndExpiries) {
  Open("n1", 7, 700);
  Open("n1", 7, 701);
  Open("n1", 8, 800);
  EXPECT_EQ(Value("im_presence_leases"), 3);
  EXPECT_EQ(Value("im_presence_users_online"), 2);
  EXPECT_EQ(Value("im_presence_nodes"), 1);
  EXPECT_EQ(Value("im_presence_lease_expiries_total"), 0);

  // The node never heartbeats: all three leases lapse after the TTL.
  ASSERT_TRUE(WaitUntil(
      [&] { return Value("im_presence_lease_expiries_total") == 3; }, kWait));
  EXPECT_EQ(Value("im_presence_leases"), 0);
  EXPECT_EQ(Value("im_presence_nodes"), 0);
}

}  // namespace
}  // namespace im::presence
