#include "services/presence/presence_lease_client.h"

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "services/presence/fake_device_presence_reporter.h"
#include "services/presence/presence_test_support.h"
#include "storage/fake/fake_database.h"

namespace im::presence {
namespace {

constexpr absl::Duration kWait = absl::Seconds(5);

class PresenceLeaseClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PresenceServiceImpl::Options options;
    options.lease_ttl = absl::Milliseconds(300);
    options.grace_period = absl::Milliseconds(50);
    options.tick = absl::Milliseconds(10);
    harness_ = std::make_unique<PresenceHarness>(&database_, options);
    harness_->Start();
  }

  std::unique_ptr<PresenceLeaseClient> Client(const std::string& node) {
    return harness_->LeaseClient(node);
  }
  static DeviceStream Stream(uint64_t user, uint64_t session,
                             const std::string& name = "phone") {
    return MobileStream(user, session, name);
  }

  size_t ServerLeases() { return harness_->service()->stats().leases; }
  size_t ServerOnline() { return harness_->service()->stats().users_online; }

  storage::FakeDatabase database_;
  std::unique_ptr<PresenceHarness> harness_;
};

TEST_F(PresenceLeaseClientTest, RejectsBadOptions) {
  PresenceLeaseClient::Options options;
  const auto token = [] { return std::string("t"); };
  EXPECT_EQ(PresenceLeaseClient::Create(options, harness_->channel(), token)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);  // no node id
  options.node_id = "n1";
  EXPECT_EQ(
      PresenceLeaseClient::Create(options, nullptr, token).status().code(),
      absl::StatusCode::kInvalidArgument);
  options.max_in_flight = 0;
  EXPECT_EQ(PresenceLeaseClient::Create(options, harness_->channel(), token)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PresenceLeaseClientTest, StreamsOfOneSessionShareOneLease) {
  auto client = Client("n1");
  client->OnStreamOpened(Stream(5, 50));
  client->OnStreamOpened(Stream(5, 50));
  ASSERT_TRUE(WaitUntil([&] { return client->stats().leases_held == 1; },
                        kWait));
  EXPECT_EQ(ServerLeases(), 1u);
  client->OnStreamClosed(5, 50);
  // Another stream of the session is still open: nothing to tell.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(client->stats().closes_sent, 0u);
  EXPECT_EQ(ServerLeases(), 1u);
  client->OnStreamClosed(5, 50);
  ASSERT_TRUE(WaitUntil([&] { return client->stats().sessions == 0; }, kWait));
  EXPECT_EQ(ServerLeases(), 0u);
  const PresenceLeaseClient::Stats stats = client->stats();
  EXPECT_EQ(stats.opens_sent, 1u);
  EXPECT_EQ(stats.closes_sent, 1u);
  EXPECT_EQ(stats.leases_held, 0u);
  EXPECT_EQ(stats.sessions, 0u);
  EXPECT_EQ(stats.failed_calls, 0u);
}

TEST_F(PresenceLeaseClientTest, HeartbeatsKeepLeasesPastTheTtl) {
  auto client = Client("n1");
  client->OnStreamOpened(Stream(5, 50));
  ASSERT_TRUE(WaitUntil([&] { return ServerLeases() == 1; }, kWait));
  absl::SleepFor(absl::Milliseconds(1000));
  EXPECT_EQ(ServerLeases(), 1u);
  EXPECT_GE(client->stats().heartbeats, 3u);
  EXPECT_EQ(client->stats().resyncs, 0u);
}

TEST_F(PresenceLeaseClientTest, ShutdownSendsPendingCloses) {
  auto client = Client("n1");
  for (uint64_t session = 1; session <= 3; ++session) {
    client->OnStreamOpened(Stream(session, session));
  }
  ASSERT_TRUE(WaitUntil([&] { return ServerLeases() == 3; }, kWait));
  for (uint64_t session = 1; session <= 3; ++session) {
    client->OnStreamClosed(session, session);
  }
  client->Shutdown(kWait);
  EXPECT_EQ(ServerLeases(), 0u);
  // Later calls are ignored.
  client->OnStreamOpened(Stream(9, 9));
  EXPECT_EQ(client->stats().sessions, 0u);
}

TEST_F(PresenceLeaseClientTest, RestartedNodeClearsLeasesItNoLongerServes) {
  // A previous process of node n1 opened a lease and died before closing it.
  {
    auto old_client = Client("n1");
    old_client->OnStreamOpened(Stream(7, 70));
    ASSERT_TRUE(WaitUntil([&] { return ServerLeases() == 1; }, kWait));
  }
  // The new process serves another device; the stale lease goes away well
  // before the TTL would have ended it, because the new process heartbeats.
  auto client = Client("n1");
  client->OnStreamOpened(Stream(8, 80));
  const auto states = [&] {
    v1::QueryRequest request;
    request.add_user_ids(7);
    request.add_user_ids(8);
    v1::QueryResponse response;
    EXPECT_TRUE(harness_->stub()
                    ->Query(PresenceHarness::Context(harness_->InternalToken())
                                .get(),
                            request, &response)
                    .ok());
    return std::make_pair(response.presences(0).state(),
                          response.presences(1).state());
  };
  ASSERT_TRUE(WaitUntil(
      [&] {
        return states() == std::make_pair(v1::PRESENCE_STATE_OFFLINE,
                                          v1::PRESENCE_STATE_ONLINE);
      },
      kWait));
  EXPECT_GE(client->stats().resyncs, 1u);
  EXPECT_EQ(client->stats().leases_held, 1u);
  EXPECT_EQ(ServerLeases(), 1u);
  EXPECT_EQ(ServerOnline(), 1u);
}

TEST_F(PresenceLeaseClientTest, RefusedOpenIsNotRetried) {
  auto client = Client("n1");
  client->OnStreamOpened(Stream(5, 50, std::string(129, 'x')));
  ASSERT_TRUE(
      WaitUntil([&] { return client->stats().failed_calls == 1; }, kWait));
  absl::SleepFor(absl::Milliseconds(200));
  const PresenceLeaseClient::Stats stats = client->stats();
  EXPECT_EQ(stats.opens_sent, 1u);
  EXPECT_EQ(stats.failed_calls, 1u);
  EXPECT_EQ(stats.leases_held, 0u);
  EXPECT_EQ(ServerLeases(), 0u);
  // Other sessions are unaffected.
  client->OnStreamOpened(Stream(6, 60));
  ASSERT_TRUE(WaitUntil([&] { return ServerLeases() == 1; }, kWait));
}

TEST(FakeDevicePresenceReporterTest, CountsNestedStreams) {
  FakeDevicePresenceReporter fake;
  DeviceStream stream;
  stream.user_id = 5;
  stream.session_id = 50;
  fake.OnStreamOpened(stream);
  fake.OnStreamOpened(stream);
  EXPECT_EQ(fake.OpenStreams(50), 2);
  fake.OnStreamClosed(5, 50);
  EXPECT_TRUE(fake.IsOnline(5));
  fake.OnStreamClosed(5, 50);
  EXPECT_FALSE(fake.IsOnline(5));
  fake.OnStreamClosed(5, 50);
  EXPECT_EQ(fake.unmatched_closes(), 1);
  EXPECT_EQ(fake.calls().size(), 5u);
  EXPECT_TRUE(fake.calls()[0].opened);
  EXPECT_FALSE(fake.calls()[4].opened);
}

}  // namespace
}  // namespace im::presence
