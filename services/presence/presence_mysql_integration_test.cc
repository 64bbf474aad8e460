// Presence over real gRPC and a real MariaDB (tag "mysql"): last_seen
// persistence, status text and visibility through the MySQL stores.
//
//   bazel test //services/presence:presence_mysql_integration_test
//     --test_env=IM_TEST_MYSQL_HOST=127.0.0.1 --test_env=IM_TEST_MYSQL_PORT=13310
//     --test_env=IM_TEST_MYSQL_USER=im --test_env=IM_TEST_MYSQL_PASSWORD=im

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/proto_time.h"
#include "services/presence/presence_test_support.h"
#include "storage/testing/mysql_test_database.h"

namespace im::presence {
namespace {

constexpr absl::Duration kGrace = absl::Milliseconds(150);
constexpr absl::Duration kWait = absl::Seconds(10);

class PresenceMysqlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = storage::testing::MakeMysqlTestDatabase();
    ASSERT_NE(database_, nullptr);
    alice_ = CreateUser("alice");
    bob_ = CreateUser("bob");
    dave_ = CreateUser("dave");
    ASSERT_TRUE(
        database_->log()->GetOrCreateDirect(alice_, bob_, "", absl::Now()).ok());

    PresenceServiceImpl::Options options;
    options.lease_ttl = absl::Seconds(30);
    options.grace_period = kGrace;
    options.coalesce_window = absl::Milliseconds(50);
    options.tick = absl::Milliseconds(10);
    options.last_seen_interval = absl::Seconds(60);
    options.last_seen_flush_period = absl::Milliseconds(20);
    harness_ = std::make_unique<PresenceHarness>(database_.get(), options);
    harness_->Start();
  }

  void TearDown() override {
    harness_.reset();
    database_.reset();
  }

  uint64_t CreateUser(const std::string& name) {
    storage::NewUser user;
    user.username = name;
    user.username_norm = name;
    user.display_name = name;
    user.created_at = absl::Now();
    absl::StatusOr<storage::UserRecord> created =
        database_->users()->CreateUser(user);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->id : 0;
  }

  v1::Presence QueryOne(uint64_t viewer, uint64_t user) {
    v1::QueryRequest request;
    request.add_user_ids(user);
    v1::QueryResponse response;
    const grpc::Status status = harness_->stub()->Query(
        PresenceHarness::Context(harness_->UserToken(viewer, viewer)).get(),
        request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.presences_size() == 1 ? response.presences(0)
                                          : v1::Presence();
  }

  std::optional<absl::Time> StoredLastSeen(uint64_t user) {
    absl::StatusOr<storage::UserRecord> record =
        database_->users()->GetUser(user);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? record->last_seen_at : std::nullopt;
  }

  std::unique_ptr<storage::Database> database_;
  std::unique_ptr<PresenceHarness> harness_;
  uint64_t alice_ = 0, bob_ = 0, dave_ = 0;
};

TEST_F(PresenceMysqlTest, LastSeenWrittenOnOfflineNotOnEveryFlap) {
  std::unique_ptr<PresenceLeaseClient> node = harness_->LeaseClient("n1");
  node->OnStreamOpened(MobileStream(bob_, 21));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return QueryOne(alice_, bob_).state() == v1::PRESENCE_STATE_ONLINE;
      },
      kWait));
  // Flaps within the grace period: each reaches presence as a close and an
  // open, and none is an offline transition.
  for (int i = 0; i < 5; ++i) {
    const uint64_t closes = node->stats().closes_sent;
    node->OnStreamClosed(bob_, 21);
    ASSERT_TRUE(WaitUntil(
        [&] { return node->stats().closes_sent == closes + 1; }, kWait));
    node->OnStreamOpened(MobileStream(bob_, 21));
    absl::SleepFor(kGrace / 3);
  }
  absl::SleepFor(kGrace + absl::Milliseconds(200));
  EXPECT_EQ(harness_->users()->rows_for(bob_), 0);
  EXPECT_FALSE(StoredLastSeen(bob_).has_value());

  node->OnStreamClosed(bob_, 21);
  ASSERT_TRUE(WaitUntil(
      [&] { return harness_->users()->rows_for(bob_) == 1; }, kWait));
  const v1::Presence offline = QueryOne(alice_, bob_);
  ASSERT_EQ(offline.state(), v1::PRESENCE_STATE_OFFLINE);
  ASSERT_TRUE(StoredLastSeen(bob_).has_value());
  EXPECT_EQ(absl::ToUnixMicros(*StoredLastSeen(bob_)),
            absl::ToUnixMicros(FromProtoTime(offline.last_seen())));

  // More real offline transitions within the interval: not written yet.
  absl::Time seen = FromProtoTime(offline.last_seen());
  for (int i = 0; i < 2; ++i) {
    node->OnStreamOpened(MobileStream(bob_, 21));
    ASSERT_TRUE(WaitUntil(
        [&] {
          return QueryOne(alice_, bob_).state() == v1::PRESENCE_STATE_ONLINE;
        },
        kWait));
    node->OnStreamClosed(bob_, 21);
    ASSERT_TRUE(WaitUntil(
        [&] {
          const v1::Presence now = QueryOne(alice_, bob_);
          return now.state() == v1::PRESENCE_STATE_OFFLINE &&
                 FromProtoTime(now.last_seen()) > seen;
        },
        kWait));
    seen = FromProtoTime(QueryOne(alice_, bob_).last_seen());
  }
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(harness_->users()->rows_for(bob_), 1);

  // Shutdown writes the newest value; a restarted presence reads it back
  // from MariaDB.
  node.reset();
  harness_->Restart();
  EXPECT_EQ(harness_->users()->rows_for(bob_), 2);
  ASSERT_TRUE(StoredLastSeen(bob_).has_value());
  EXPECT_EQ(absl::ToUnixMicros(*StoredLastSeen(bob_)),
            absl::ToUnixMicros(seen));
  const v1::Presence restarted = QueryOne(alice_, bob_);
  EXPECT_EQ(restarted.state(), v1::PRESENCE_STATE_OFFLINE);
  EXPECT_EQ(absl::ToUnixMicros(FromProtoTime(restarted.last_seen())),
            absl::ToUnixMicros(seen));
}

TEST_F(PresenceMysqlTest, VisibilityAndStatusThroughMysql) {
  v1::SetStatusRequest request;
  request.set_status_text("on a train");
  v1::SetStatusResponse response;
  ASSERT_TRUE(harness_->stub()
                  ->SetStatus(PresenceHarness::Context(
                                  harness_->UserToken(bob_, bob_))
                                  .get(),
                              request, &response)
                  .ok());
  EXPECT_EQ(QueryOne(alice_, bob_).status_text(), "on a train");
  const v1::Presence hidden = QueryOne(dave_, bob_);
  EXPECT_EQ(hidden.state(), v1::PRESENCE_STATE_UNKNOWN);
  EXPECT_EQ(hidden.status_text(), "");
  EXPECT_EQ(database_->users()->GetUser(bob_)->status_text, "on a train");
  harness_->Restart();
  EXPECT_EQ(QueryOne(alice_, bob_).status_text(), "on a train");
  EXPECT_EQ(QueryOne(alice_, bob_).state(), v1::PRESENCE_STATE_OFFLINE);
}

}  // namespace
}  // namespace im::presence
