// Redis restarts (routes and subscriptions are gone, nothing persisted)
// while alice sends through m0 to bob's stream on m1: every acknowledged
// message reaches bob exactly once and in order, retried sends store
// nothing twice, and presence crosses nodes again. The nodes use a
// redis-server of this test's own, so the shared one stays up.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/message/testing/message_test_env.h"
#include "tests/cluster/binary_cluster.h"
#include "tests/cluster/cluster_test_support.h"
#include "tests/cluster/owned_redis_server.h"

namespace im::cluster_testing {
namespace {

using ::im::message::testing::ChatClient;

TEST(RedisRestartTest, NothingAcknowledgedIsLostOrDuplicated) {
  std::unique_ptr<OwnedRedisServer> redis = OwnedRedisServer::StartOrFail();
  ASSERT_NE(redis, nullptr);
  BinaryCluster::Options cluster_options;
  cluster_options.redis = redis->address();
  std::unique_ptr<BinaryCluster> cluster =
      BinaryCluster::StartOrFail(cluster_options);
  ASSERT_NE(cluster, nullptr);
  const uint64_t alice = cluster->CreateUser("alice");
  const uint64_t bob = cluster->CreateUser("bob");
  const std::string alice_token = cluster->Token(alice, 1);
  const uint64_t carol = cluster->CreateUser("carol");
  const uint64_t group =
      CreateGroup(cluster->MessageChannel(0), alice_token, {bob, carol});
  ASSERT_NE(group, 0u);
  ChatClient::Options options;
  options.hello = ChatClient::ResumeHello({{group, 1}});
  ChatClient on_m1(cluster->MessageChannel(1), cluster->Token(bob, 2), options);
  ASSERT_TRUE(on_m1.AwaitReady());

  // Alice sends one message after another, retrying failed sends.
  RetryingSender alice_sends(cluster->MessageChannel(0), alice_token, group);
  ASSERT_TRUE(alice_sends.AwaitAcked(50));
  const int m0_links =
      cluster->message(0).CountLogLines("Redis delivery bus: connected");
  const int m1_links =
      cluster->message(1).CountLogLines("Redis delivery bus: connected");
  // Down for a second: sends go on being acknowledged meanwhile.
  ASSERT_TRUE(redis->RestartOrFail(absl::Seconds(1)));
  const int at_restart = alice_sends.acked();
  // Traffic goes on until both nodes linked again, and a while after.
  const absl::Time relink_deadline = absl::Now() + absl::Seconds(30);
  bool relinked = false;
  while (!relinked && absl::Now() < relink_deadline) {
    relinked =
        cluster->message(0).CountLogLines("Redis delivery bus: connected") >
            m0_links &&
        cluster->message(1).CountLogLines("Redis delivery bus: connected") >
            m1_links;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(relinked) << "a message node did not link through Redis again";
  EXPECT_TRUE(alice_sends.AwaitAcked(alice_sends.acked() + 50));
  alice_sends.Stop();
  EXPECT_GT(alice_sends.acked(), at_restart);

  const uint64_t last = alice_sends.last_seq();
  EXPECT_EQ(last, 1u + alice_sends.acked())
      << "a retried send was stored twice";
  ASSERT_TRUE(on_m1.AwaitSeq(group, last, absl::Seconds(30)));
  absl::SleepFor(absl::Milliseconds(500));  // a duplicate would show now
  EXPECT_EQ(on_m1.Seqs(group), Range(2, last));
  EXPECT_FALSE(on_m1.ended());

  // Presence crosses nodes again: carol, online on m1 (lease on p1) only
  // after the restart, shows online to alice asking p0.
  ChatClient carol_on_m1(cluster->MessageChannel(1), cluster->Token(carol, 3),
                         options);
  ASSERT_TRUE(carol_on_m1.AwaitReady());
  auto stub =
      presence::v1::PresenceService::NewStub(cluster->PresenceChannel(0));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  presence::v1::PresenceState state = presence::v1::PRESENCE_STATE_UNKNOWN;
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    message::testing::Authorize(&context, alice_token);
    presence::v1::QueryRequest request;
    request.add_user_ids(carol);
    presence::v1::QueryResponse response;
    if (stub->Query(&context, request, &response).ok() &&
        response.presences_size() == 1) {
      state = response.presences(0).state();
      if (state == presence::v1::PRESENCE_STATE_ONLINE) break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(state, presence::v1::PRESENCE_STATE_ONLINE);
}

}  // namespace
}  // namespace im::cluster_testing
