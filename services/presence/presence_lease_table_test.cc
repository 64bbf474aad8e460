#include "services/presence/presence_lease_table.h"

#include <vector>

#include "gtest/gtest.h"

namespace im::presence {
namespace {

constexpr absl::Duration kTtl = absl::Milliseconds(300);
constexpr absl::Duration kGrace = absl::Milliseconds(100);
constexpr absl::Duration kInterval = absl::Seconds(60);

class PresenceLeaseTableTest : public ::testing::Test {
 protected:
  PresenceLeaseTableTest()
      : table_(PresenceLeaseTable::Options{kTtl, kGrace, kInterval,
                                           absl::Minutes(10)},
               [this](absl::Span<const uint64_t> users) {
                 changes_.insert(changes_.end(), users.begin(), users.end());
               }) {}

  uint64_t Open(const std::string& node, uint64_t user, uint64_t session,
                const std::string& name = "phone") {
    LeaseSpec spec;
    spec.node_id = node;
    spec.user_id = user;
    spec.session_id = session;
    spec.device_kind = auth::v1::DEVICE_KIND_MOBILE;
    spec.device_name = name;
    return table_.OpenLease(spec, now_);
  }

  UserPresence Get(uint64_t user) { return table_.Get({user}).front(); }

  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::vector<uint64_t> changes_;
  PresenceLeaseTable table_;
};

TEST_F(PresenceLeaseTableTest, OnlineWhileAnyDeviceHoldsALease) {
  const uint64_t a = Open("n1", 7, 100, "phone");
  now_ += absl::Milliseconds(10);
  const uint64_t b = Open("n1", 7, 101, "laptop");
  ASSERT_NE(a, b);
  UserPresence presence = Get(7);
  ASSERT_TRUE(presence.online);
  ASSERT_EQ(presence.devices.size(), 2u);
  EXPECT_EQ(presence.devices[0].name, "phone");
  EXPECT_EQ(presence.devices[1].name, "laptop");
  EXPECT_EQ(changes_, (std::vector<uint64_t>{7, 7}));

  // Closing one device: still listed during the grace period, then gone.
  table_.CloseLease("n1", a, now_);
  EXPECT_EQ(Get(7).devices.size(), 2u);
  now_ += kGrace;
  table_.Advance(now_);
  presence = Get(7);
  ASSERT_TRUE(presence.online);
  ASSERT_EQ(presence.devices.size(), 1u);
  EXPECT_EQ(presence.devices[0].name, "laptop");
  EXPECT_EQ(changes_.size(), 3u);

  const absl::Time closed_at = now_;
  table_.CloseLease("n1", b, now_);
  now_ += kGrace - absl::Milliseconds(1);
  table_.Advance(now_);
  EXPECT_TRUE(Get(7).online);
  now_ += absl::Milliseconds(1);
  table_.Advance(now_);
  presence = Get(7);
  EXPECT_FALSE(presence.online);
  EXPECT_TRUE(presence.devices.empty());
  ASSERT_TRUE(presence.last_seen.has_value());
  EXPECT_EQ(*presence.last_seen, closed_at);
  EXPECT_EQ(changes_.size(), 4u);
}

TEST_F(PresenceLeaseTableTest, FlapWithinGraceChangesNothing) {
  const absl::Time first_open = now_;
  std::string node = "n1";
  uint64_t lease = Open(node, 7, 100);
  changes_.clear();
  for (int i = 0; i < 6; ++i) {
    now_ += absl::Milliseconds(10);
    table_.CloseLease(node, lease, now_);
    EXPECT_EQ(table_.counts().leases, 0u);
    now_ += kGrace - absl::Milliseconds(1);
    table_.Advance(now_);
    // Back on the same node or another, as after a reconnect.
    node = i % 2 == 0 ? "n2" : "n1";
    lease = Open(node, 7, 100);
    table_.Heartbeat("n1", node == "n1" ? 1 : 0, now_);
    table_.Heartbeat("n2", node == "n2" ? 1 : 0, now_);
    table_.Advance(now_ + kGrace);
  }
  EXPECT_TRUE(changes_.empty());
  const UserPresence presence = Get(7);
  ASSERT_TRUE(presence.online);
  ASSERT_EQ(presence.devices.size(), 1u);
  EXPECT_EQ(presence.devices[0].online_since, first_open);
  EXPECT_TRUE(table_.TakeLastSeenDue(now_, false, 100).empty());
}

TEST_F(PresenceLeaseTableTest, SilentNodeLosesItsLeasesAfterTtl) {
  Open("n1", 7, 100);
  Open("n2", 8, 200);
  now_ += absl::Milliseconds(100);
  const absl::Time last_heartbeat = now_;
  EXPECT_EQ(table_.Heartbeat("n1", 1, now_).renewed, 1u);
  // n2 keeps heartbeating, n1 goes silent.
  now_ += kTtl - absl::Milliseconds(1);
  EXPECT_FALSE(table_.Heartbeat("n2", 1, now_).resync);
  table_.Advance(now_);
  EXPECT_TRUE(Get(7).online);
  now_ += absl::Milliseconds(1);
  table_.Advance(now_);
  const UserPresence gone = Get(7);
  EXPECT_FALSE(gone.online);
  ASSERT_TRUE(gone.last_seen.has_value());
  EXPECT_EQ(*gone.last_seen, last_heartbeat);
  EXPECT_TRUE(Get(8).online);
  EXPECT_EQ(table_.counts().leases, 1u);
  EXPECT_EQ(table_.counts().nodes, 1u);
}

TEST_F(PresenceLeaseTableTest, CountsLeasesExpiredWithTheirNode) {
  Open("n1", 7, 100);
  Open("n1", 8, 101);
  const uint64_t closed = Open("n2", 9, 200);
  Open("n2", 10, 201);
  table_.CloseLease("n2", closed, now_);
  now_ += kTtl / 2;
  table_.Heartbeat("n2", 1, now_);
  now_ += kTtl / 2;
  table_.Advance(now_);
  // n1's two leases lapsed; n2's closed lease and its grace end do not
  // count.
  EXPECT_EQ(table_.counts().leases_expired, 2u);
  EXPECT_EQ(table_.counts().leases, 1u);
  now_ += kTtl;
  table_.Advance(now_);
  EXPECT_EQ(table_.counts().leases_expired, 3u);
  EXPECT_EQ(table_.counts().leases, 0u);
}

TEST_F(PresenceLeaseTableTest, HeartbeatAsksUnknownNodeToResync) {
  // Presence restarted: the node holds 3 leases, the table none.
  PresenceLeaseTable::HeartbeatResult result = table_.Heartbeat("n1", 3, now_);
  EXPECT_TRUE(result.resync);
  EXPECT_EQ(result.renewed, 0u);
  Open("n1", 7, 100);
  Open("n1", 8, 200);
  EXPECT_TRUE(table_.Heartbeat("n1", 3, now_).resync);
  Open("n1", 9, 300);
  result = table_.Heartbeat("n1", 3, now_);
  EXPECT_FALSE(result.resync);
  EXPECT_EQ(result.renewed, 3u);
  EXPECT_TRUE(Get(9).online);
}

TEST_F(PresenceLeaseTableTest, ResyncDropsLeasesTheNodeNoLongerHolds) {
  const uint64_t kept = Open("n1", 7, 100);
  Open("n1", 8, 200);
  Open("n1", 9, 300);
  const absl::Time kept_since = now_;
  now_ += absl::Milliseconds(10);
  // The node restarted and only session 100 is back.
  EXPECT_TRUE(table_.Heartbeat("n1", 1, now_).resync);
  EXPECT_EQ(Open("n1", 7, 100), kept);
  PresenceLeaseTable::HeartbeatResult result = table_.Heartbeat("n1", 1, now_);
  EXPECT_FALSE(result.resync);
  EXPECT_EQ(result.renewed, 1u);
  EXPECT_EQ(table_.counts().leases, 1u);
  now_ += kGrace;
  table_.Advance(now_);
  EXPECT_FALSE(Get(8).online);
  EXPECT_FALSE(Get(9).online);
  const UserPresence presence = Get(7);
  ASSERT_TRUE(presence.online);
  EXPECT_EQ(presence.devices[0].online_since, kept_since);
}

TEST_F(PresenceLeaseTableTest, CloseFromAnotherNodeOrUnknownLeaseIsIgnored) {
  const uint64_t lease = Open("n1", 7, 100);
  table_.CloseLease("n2", lease, now_);
  table_.CloseLease("n1", lease + 12345, now_);
  now_ += kGrace;
  table_.Advance(now_);
  EXPECT_TRUE(Get(7).online);
  EXPECT_EQ(table_.counts().leases, 1u);
}

TEST_F(PresenceLeaseTableTest, SameSessionOnTwoNodesStaysOnlineUntilBothEnd) {
  const uint64_t first = Open("n1", 7, 100);
  const uint64_t second = Open("n2", 7, 100);
  EXPECT_NE(first, second);
  EXPECT_EQ(Get(7).devices.size(), 1u);
  table_.CloseLease("n1", first, now_);
  now_ += kGrace;
  table_.Advance(now_);
  EXPECT_TRUE(Get(7).online);
  table_.CloseLease("n2", second, now_);
  now_ += kGrace;
  table_.Advance(now_);
  EXPECT_FALSE(Get(7).online);
}

TEST_F(PresenceLeaseTableTest, LastSeenWrittenOnOfflineAtMostOncePerInterval) {
  uint64_t lease = Open("n1", 7, 100);
  EXPECT_TRUE(table_.TakeLastSeenDue(now_, false, 100).empty());
  const absl::Time closed_at = now_;
  table_.CloseLease("n1", lease, now_);
  now_ += kGrace;
  table_.Advance(now_);
  auto due = table_.TakeLastSeenDue(now_, false, 100);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].first, 7u);
  EXPECT_EQ(due[0].second, closed_at);
  EXPECT_TRUE(table_.TakeLastSeenDue(now_, false, 100).empty());

  // Two more real offline transitions within the interval: held back.
  absl::Time latest_close;
  for (int i = 0; i < 2; ++i) {
    now_ += absl::Seconds(1);
    lease = Open("n1", 7, 100);
    now_ += absl::Seconds(1);
    latest_close = now_;
    table_.CloseLease("n1", lease, now_);
    now_ += kGrace;
    table_.Advance(now_);
    EXPECT_TRUE(table_.TakeLastSeenDue(now_, false, 100).empty());
  }
  now_ = due[0].second + kGrace + kInterval;
  due = table_.TakeLastSeenDue(now_, false, 100);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].second, latest_close);
}

TEST_F(PresenceLeaseTableTest, OnlineUsersAreRefreshedOncePerInterval) {
  Open("n1", 7, 100);
  now_ += kInterval - absl::Seconds(1);
  EXPECT_TRUE(table_.TakeLastSeenDue(now_, false, 100).empty());
  now_ += absl::Seconds(1);
  auto due = table_.TakeLastSeenDue(now_, false, 100);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].second, now_);
  EXPECT_TRUE(table_.TakeLastSeenDue(now_, false, 100).empty());
  // A failed write is due again at once.
  table_.RestoreLastSeenDue(due);
  EXPECT_EQ(table_.TakeLastSeenDue(now_, false, 100).size(), 1u);
  // Shutdown flush writes every online user once.
  now_ += absl::Seconds(1);
  EXPECT_EQ(table_.TakeLastSeenDue(now_, true, 100).size(), 1u);
  EXPECT_TRUE(table_.TakeLastSeenDue(now_, true, 100).empty());
}

TEST_F(PresenceLeaseTableTest, StoredStateMergesWithoutOverwritingNewer) {
  const absl::Time stored_seen = now_ - absl::Hours(1);
  EXPECT_EQ(table_.UsersWithoutStoredState({7, 8, 9}),
            (std::vector<uint64_t>{7, 8, 9}));
  table_.SetStatusText(8, "busy", now_);
  table_.MergeStoredState({7, 8, 9},
                          {StoredUser{7, stored_seen, "hello"},
                           StoredUser{8, std::nullopt, "old status"}},
                          now_);
  EXPECT_TRUE(table_.UsersWithoutStoredState({7, 8, 9}).empty());
  const std::vector<UserPresence> got = table_.Get({7, 8, 9});
  EXPECT_FALSE(got[0].online);
  ASSERT_TRUE(got[0].last_seen.has_value());
  EXPECT_EQ(*got[0].last_seen, stored_seen);
  EXPECT_EQ(got[0].status_text, "hello");
  EXPECT_EQ(got[1].status_text, "busy");
  EXPECT_FALSE(got[1].last_seen.has_value());
  EXPECT_FALSE(got[2].last_seen.has_value());
}

TEST_F(PresenceLeaseTableTest, UsersSeenThroughLeasesAreQueuedForLoading) {
  Open("n1", 7, 100);
  Open("n1", 7, 101);
  Open("n1", 8, 200);
  std::vector<uint64_t> to_load = table_.TakeUsersToLoad(10);
  std::sort(to_load.begin(), to_load.end());
  EXPECT_EQ(to_load, (std::vector<uint64_t>{7, 8}));
  EXPECT_TRUE(table_.TakeUsersToLoad(10).empty());
}

// A replica fed with a node's full lease list ends up holding exactly it:
// leases it lacked open, leases the node no longer holds close (with the
// grace period), and its summary then equals the origin's.
TEST_F(PresenceLeaseTableTest, ReplaceNodeLeasesMakesAReplicaEqual) {
  PresenceLeaseTable replica(
      PresenceLeaseTable::Options{kTtl, kGrace, kInterval, absl::Minutes(10)},
      nullptr);
  Open("n1", 7, 100, "phone");
  Open("n1", 8, 200, "laptop");
  LeaseSpec stale;
  stale.node_id = "n1";
  stale.user_id = 9;
  stale.session_id = 300;
  replica.OpenLease(stale, now_);
  EXPECT_NE(replica.SummarizeNode("n1").digest,
            table_.SummarizeNode("n1").digest);

  const std::vector<LeaseSpec> leases = table_.NodeLeases("n1");
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].session_id, 100u);
  EXPECT_EQ(leases[0].device_name, "phone");
  replica.ReplaceNodeLeases("n1", leases, now_);
  const PresenceLeaseTable::NodeSummary summary = replica.SummarizeNode("n1");
  EXPECT_EQ(summary.lease_count, 2u);
  EXPECT_EQ(summary.digest, table_.SummarizeNode("n1").digest);
  EXPECT_EQ(replica.Get({8}).front().devices.at(0).name, "laptop");
  EXPECT_TRUE(replica.Get({9}).front().online);  // grace period
  replica.Advance(now_ + kGrace);
  EXPECT_FALSE(replica.Get({9}).front().online);
}

// Closing by session (what replicas hear) and renewing without a count.
TEST_F(PresenceLeaseTableTest, CloseSessionLeaseAndRenewNode) {
  const uint64_t lease = Open("n1", 7, 100);
  EXPECT_EQ(table_.LeaseSession("n1", lease), std::optional<uint64_t>(100));
  EXPECT_EQ(table_.LeaseSession("n2", lease), std::nullopt);
  Open("n1", 8, 200);
  now_ += kTtl - absl::Milliseconds(1);
  table_.RenewNode("n1", now_);
  now_ += kTtl - absl::Milliseconds(1);
  table_.Advance(now_);
  EXPECT_TRUE(Get(8).online);  // renewed
  table_.CloseSessionLease("n1", 100, now_);
  table_.CloseSessionLease("n1", 999, now_);  // unknown: ignored
  table_.Advance(now_ + kGrace);
  EXPECT_FALSE(Get(7).online);
  EXPECT_TRUE(Get(8).online);
  EXPECT_EQ(table_.SummarizeNode("n1").lease_count, 1u);
}

}  // namespace
}  // namespace im::presence
