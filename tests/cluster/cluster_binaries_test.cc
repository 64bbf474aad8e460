// The real binaries as two presence and two message nodes on MariaDB and
// Redis (tags "mysql", "redis"): cross-node delivery, resume on the other
// node, presence across nodes, a killed message node whose devices go
// offline on the other presence node within the lease TTL, and traffic
// through one address of both nodes surviving the kill of one.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/message/testing/message_test_env.h"
#include "services/presence/presence_test_support.h"
#include "tests/cluster/binary_cluster.h"
#include "tests/cluster/cluster_test_support.h"

namespace im::cluster_testing {
namespace {

using ::im::message::testing::ChatClient;
using ::im::presence::BatchReader;
using ::im::presence::v1::PRESENCE_STATE_OFFLINE;
using ::im::presence::v1::PRESENCE_STATE_ONLINE;

constexpr absl::Duration kLeaseTtl = absl::Seconds(3);

ChatClient::Options From(
    const absl::flat_hash_map<uint64_t, uint64_t>& cursors) {
  ChatClient::Options options;
  options.hello = ChatClient::ResumeHello(cursors);
  return options;
}

// Waits for a batch saying `user` is in `state`; false when none comes
// within `timeout`.
bool AwaitPresence(BatchReader& reader, uint64_t user,
                   presence::v1::PresenceState state, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::optional<presence::v1::PresenceBatch> batch =
        reader.Next(deadline - absl::Now());
    if (!batch.has_value()) return false;
    for (const auto& presence : batch->presences()) {
      if (presence.user_id() == user && presence.state() == state) return true;
    }
  }
  return false;
}

class ClusterBinariesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BinaryCluster::Options options;
    options.lease_ttl = kLeaseTtl;
    cluster_ = BinaryCluster::StartOrFail(options);
    ASSERT_NE(cluster_, nullptr);
    // Every test: alice and bob in a group (created through m0, seq 1).
    alice_ = cluster_->CreateUser("alice");
    bob_ = cluster_->CreateUser("bob");
    alice_token_ = cluster_->Token(alice_, 1);
    bob_token_ = cluster_->Token(bob_, 2);
    group_ = CreateGroup(cluster_->MessageChannel(0), alice_token_, {bob_});
    ASSERT_NE(group_, 0u);
  }

  std::unique_ptr<BinaryCluster> cluster_;
  uint64_t alice_ = 0;
  uint64_t bob_ = 0;
  std::string alice_token_;
  std::string bob_token_;
  uint64_t group_ = 0;
};

// What alice sends through m0 reaches bob's stream on m1 in seq order,
// once each; bob then resumes on m0 with his cursors and gets exactly what
// was sent through m1 meanwhile; alice, subscribed on p0, sees bob online
// while his stream on m1 is open.
TEST_F(ClusterBinariesTest, CrossNodeDeliveryResumeAndPresence) {
  auto presence_stub =
      presence::v1::PresenceService::NewStub(cluster_->PresenceChannel(0));
  BatchReader watching(presence_stub.get(), alice_token_, {bob_});
  ASSERT_TRUE(
      AwaitPresence(watching, bob_, PRESENCE_STATE_OFFLINE, absl::Seconds(10)));

  absl::flat_hash_map<uint64_t, uint64_t> cursors;
  {
    ChatClient on_m1(cluster_->MessageChannel(1), bob_token_,
                     From({{group_, 0}}));
    ASSERT_TRUE(on_m1.AwaitReady());
    EXPECT_TRUE(AwaitPresence(watching, bob_, PRESENCE_STATE_ONLINE,
                              absl::Seconds(10)));
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(Send(cluster_->MessageChannel(0), alice_token_, group_,
                       absl::StrCat("a", i), "hello")
                      .ok());
    }
    ASSERT_TRUE(on_m1.AwaitSeq(group_, 101, absl::Seconds(20)));
    EXPECT_EQ(on_m1.Seqs(group_), Range(1, 101));
    cursors = on_m1.Cursors();
    on_m1.Cancel();
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Send(cluster_->MessageChannel(1), alice_token_, group_,
                     absl::StrCat("b", i), "again")
                    .ok());
  }
  ChatClient on_m0(cluster_->MessageChannel(0), bob_token_, From(cursors));
  ASSERT_TRUE(on_m0.AwaitReady());
  ASSERT_TRUE(
      Send(cluster_->MessageChannel(1), alice_token_, group_, "live", "live")
          .ok());
  ASSERT_TRUE(on_m0.AwaitSeq(group_, 122, absl::Seconds(20)));
  EXPECT_EQ(on_m0.Seqs(group_), Range(102, 122));
}

// m1 is killed with bob's stream open: p1 stops hearing its heartbeats,
// and alice, subscribed on p0, sees bob offline within the lease TTL (plus
// the presence tick and the subscription's coalescing window).
TEST_F(ClusterBinariesTest, KilledNodeLeasesExpireOnTheOtherPresenceNode) {
  auto presence_stub =
      presence::v1::PresenceService::NewStub(cluster_->PresenceChannel(0));
  BatchReader watching(presence_stub.get(), alice_token_, {bob_});
  ChatClient on_m1(cluster_->MessageChannel(1), bob_token_,
                   From({{group_, 0}}));
  ASSERT_TRUE(on_m1.AwaitReady());
  ASSERT_TRUE(
      AwaitPresence(watching, bob_, PRESENCE_STATE_ONLINE, absl::Seconds(10)));

  const absl::Time killed = absl::Now();
  cluster_->message(1).Kill();
  ASSERT_TRUE(AwaitPresence(watching, bob_, PRESENCE_STATE_OFFLINE,
                            kLeaseTtl + absl::Seconds(10)));
  const absl::Duration took = absl::Now() - killed;
  EXPECT_LE(took, kLeaseTtl + absl::Milliseconds(1500)) << took;
  // Not through a clean close: the node could not say goodbye.
  EXPECT_GE(took, kLeaseTtl / 3);
}

// Alice sends and bob reads through the one address of both message nodes
// (a comma-separated list). m1, holding bob's stream, is killed during
// traffic: alice's sends that failed are retried with the same
// client_msg_id and land on m0; bob resumes through the same address with
// his cursors and ends up with every acknowledged seq exactly once, in
// order, and nothing was stored twice.
TEST_F(ClusterBinariesTest,
       KilledNodeTrafficMovesToTheOtherNodeBehindOneAddress) {
  std::shared_ptr<grpc::Channel> one_address = cluster_->MessageNodesChannel();
  ASSERT_NE(one_address, nullptr);
  auto on_m1 = std::make_unique<ChatClient>(cluster_->MessageChannel(1),
                                            bob_token_, From({{group_, 1}}));
  ASSERT_TRUE(on_m1->AwaitReady());

  RetryingSender alice_sends(one_address, alice_token_, group_);
  ASSERT_TRUE(alice_sends.AwaitAcked(50));
  cluster_->message(1).Kill();
  const int at_kill = alice_sends.acked();
  EXPECT_TRUE(on_m1->AwaitEnd().error_code() != grpc::StatusCode::OK);
  const std::vector<uint64_t> before_kill = on_m1->Seqs(group_);
  ChatClient resumed(one_address, bob_token_, From(on_m1->Cursors()));
  ASSERT_TRUE(resumed.AwaitReady());
  EXPECT_TRUE(alice_sends.AwaitAcked(at_kill + 100));
  alice_sends.Stop();

  const uint64_t last = alice_sends.last_seq();
  EXPECT_EQ(last, 1u + alice_sends.acked())
      << "a retried send was stored twice";
  ASSERT_TRUE(resumed.AwaitSeq(group_, last, absl::Seconds(30)));
  absl::SleepFor(absl::Milliseconds(300));  // a duplicate would show now
  std::vector<uint64_t> seqs = before_kill;
  const std::vector<uint64_t> after = resumed.Seqs(group_);
  seqs.insert(seqs.end(), after.begin(), after.end());
  EXPECT_EQ(seqs, Range(2, last));
}

}  // namespace
}  // namespace im::cluster_testing
