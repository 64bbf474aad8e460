// Two presence nodes sharing leases through the test Redis server (tag
// "redis", IM_TEST_REDIS_ADDR): a device leased on one shows on the other,
// a silent message node expires on both within the TTL, and a node whose
// subscription broke catches up.

#include "services/presence/redis_lease_replication.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "services/common/testing/redis_test_server.h"
#include "services/presence/presence_test_support.h"
#include "storage/fake/fake_database.h"

namespace im::presence {
namespace {

using ::im::presence::v1::PRESENCE_STATE_OFFLINE;
using ::im::presence::v1::PRESENCE_STATE_ONLINE;

constexpr absl::Duration kTtl = absl::Seconds(1);
constexpr absl::Duration kWait = absl::Seconds(10);

class ReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<RedisAddress> address = testing::TestRedisAddressOrFail();
    ASSERT_TRUE(address.has_value());
    redis_ = *address;
    prefix_ = testing::TestRedisPrefix();
    storage::NewUser user;
    user.username = "u";
    user.username_norm = "u";
    user.created_at = absl::Now();
    user_ = database_.users()->CreateUser(user)->id;
    for (int i = 0; i < 2; ++i) Add(absl::StrCat("p", i));
    ASSERT_TRUE(WaitUntil(
        [&] {
          return replications_[0]->connected() && replications_[1]->connected();
        },
        kWait));
  }

  void Add(const std::string& name) {
    PresenceServiceImpl::Options options;
    options.lease_ttl = kTtl;
    options.grace_period = absl::Milliseconds(100);
    options.coalesce_window = absl::Milliseconds(20);
    options.tick = absl::Milliseconds(10);
    const size_t index = harnesses_.size();
    replications_.push_back(nullptr);
    options.make_replication = [this, name, index](PresenceLeaseTable* table)
        -> absl::StatusOr<std::unique_ptr<LeaseReplication>> {
      RedisLeaseReplication::Options replication;
      replication.redis.address = redis_;
      replication.instance_id = absl::StrCat(prefix_, name);
      replication.key_prefix = prefix_;
      replication.lease_ttl = kTtl;
      replication.min_backoff = absl::Milliseconds(300);
      replication.max_backoff = absl::Milliseconds(300);
      replication.sync_request_interval = absl::Milliseconds(50);
      auto created = RedisLeaseReplication::Create(replication, table);
      if (!created.ok()) return created.status();
      replications_[index] = created->get();
      return std::unique_ptr<LeaseReplication>(*std::move(created));
    };
    harnesses_.push_back(
        std::make_unique<PresenceHarness>(&database_, options));
    harnesses_.back()->Start();
  }

  // `user_`'s state as presence node `index` answers it (internal caller).
  v1::PresenceState StateOn(size_t index) {
    v1::QueryRequest request;
    request.add_user_ids(user_);
    v1::QueryResponse response;
    const grpc::Status status = harnesses_[index]->stub()->Query(
        PresenceHarness::Context(harnesses_[index]->InternalToken()).get(),
        request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.presences_size() == 1 ? response.presences(0).state()
                                          : v1::PRESENCE_STATE_UNKNOWN;
  }

  grpc::Status OpenLease(size_t index, const std::string& node,
                         uint64_t session) {
    v1::OpenLeaseRequest request;
    request.set_node_id(node);
    request.set_user_id(user_);
    request.set_session_id(session);
    request.set_device_kind(auth::v1::DEVICE_KIND_MOBILE);
    v1::OpenLeaseResponse response;
    return harnesses_[index]->stub()->OpenLease(
        PresenceHarness::Context(harnesses_[index]->InternalToken()).get(),
        request, &response);
  }

  void KillSubscription(size_t index) {
    absl::StatusOr<std::unique_ptr<RedisConnection>> redis =
        RedisConnection::Connect(RedisConnection::Options{redis_});
    ASSERT_TRUE(redis.ok());
    absl::StatusOr<RedisReply> clients = (*redis)->Command({"CLIENT", "LIST"});
    ASSERT_TRUE(clients.ok());
    const std::string name =
        absl::StrCat("name=im-presence-sub-", prefix_, "p", index, " ");
    for (absl::string_view line : absl::StrSplit(clients->str, '\n')) {
      if (!absl::StrContains(line, name)) continue;
      for (absl::string_view field : absl::StrSplit(line, ' ')) {
        if (!absl::StartsWith(field, "id=")) continue;
        ASSERT_TRUE((*redis)
                        ->Command({"CLIENT", "KILL", "ID",
                                   std::string(field.substr(3))})
                        .ok());
        return;
      }
    }
    FAIL() << "no subscriber connection for " << name;
  }

  RedisAddress redis_;
  std::string prefix_;
  storage::FakeDatabase database_;
  uint64_t user_ = 0;
  std::vector<RedisLeaseReplication*> replications_;
  std::vector<std::unique_ptr<PresenceHarness>> harnesses_;
};

// A device of a message node served by p1 is online on p0, and once the
// stream closes, offline on p0 too.
TEST_F(ReplicationTest, ALeaseOnOneNodeShowsOnTheOther) {
  EXPECT_EQ(StateOn(0), PRESENCE_STATE_OFFLINE);
  std::unique_ptr<PresenceLeaseClient> client =
      harnesses_[1]->LeaseClient(prefix_ + "m1");
  client->OnStreamOpened(MobileStream(user_, 7));
  EXPECT_TRUE(
      WaitUntil([&] { return StateOn(0) == PRESENCE_STATE_ONLINE; }, kWait));
  client->OnStreamClosed(user_, 7);
  EXPECT_TRUE(
      WaitUntil([&] { return StateOn(0) == PRESENCE_STATE_OFFLINE; }, kWait));
  // Each node ends its grace period on its own tick: the owner may say
  // online a few milliseconds longer than the replica.
  EXPECT_TRUE(
      WaitUntil([&] { return StateOn(1) == PRESENCE_STATE_OFFLINE; }, kWait));
}

// A message node that stops heartbeating (killed) loses its leases on every
// presence node within the TTL.
TEST_F(ReplicationTest, ASilentMessageNodeExpiresOnEveryNode) {
  ASSERT_TRUE(OpenLease(1, prefix_ + "m1", 7).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return StateOn(0) == PRESENCE_STATE_ONLINE; }, kWait));
  const absl::Time opened = absl::Now();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return StateOn(0) == PRESENCE_STATE_OFFLINE &&
               StateOn(1) == PRESENCE_STATE_OFFLINE;
      },
      kWait));
  // Expired by the TTL (not closed early), within TTL plus ticks.
  EXPECT_GE(absl::Now() - opened, kTtl - absl::Milliseconds(100));
  EXPECT_LE(absl::Now() - opened, kTtl + absl::Milliseconds(900));
}

// p0's subscription breaks (for at least 150 ms) while p1 serves new
// devices; once back, p0 asks for the leases it missed.
TEST_F(ReplicationTest, ANodeThatMissedEventsCatchesUp) {
  std::unique_ptr<PresenceLeaseClient> client =
      harnesses_[1]->LeaseClient(prefix_ + "m1");
  KillSubscription(0);
  client->OnStreamOpened(MobileStream(user_, 7));
  EXPECT_TRUE(
      WaitUntil([&] { return StateOn(0) == PRESENCE_STATE_ONLINE; }, kWait));
  // Still online after several TTLs: heartbeats keep it alive on p0.
  absl::SleepFor(3 * kTtl);
  EXPECT_EQ(StateOn(0), PRESENCE_STATE_ONLINE);
  client->Shutdown(absl::Seconds(2));
}

}  // namespace
}  // namespace im::presence
