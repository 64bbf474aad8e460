// Two message nodes in one process over one store, linked through the test
// Redis server (tag "redis", IM_TEST_REDIS_ADDR): what is committed on one
// node reaches the streams on the other in seq order, with no gap and no
// duplicate, also when a node's subscription to Redis breaks.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/common/grpc_server.h"
#include "services/common/redis_connection.h"
#include "services/common/testing/redis_test_server.h"
#include "services/message/message_service.h"
#include "services/message/redis_delivery_bus.h"
#include "services/message/testing/message_test_env.h"
#include "storage/fake/fake_database.h"
#include "tests/cluster/cluster_test_support.h"

namespace im::cluster_testing {
namespace {

using ::im::message::MessageServiceImpl;
using ::im::message::MessageServiceOptions;
using ::im::message::RedisDeliveryBus;
using ::im::message::testing::ChatClient;
using ::im::message::testing::MessageTestEnv;
using ::im::message::testing::NewTestChannel;

struct Node {
  std::string id;
  std::unique_ptr<MessageServiceImpl> service;
  RedisDeliveryBus* bus = nullptr;
  std::unique_ptr<GrpcServer> server;
  std::shared_ptr<grpc::Channel> channel;
};

class MessageClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<RedisAddress> address = testing::TestRedisAddressOrFail();
    ASSERT_TRUE(address.has_value());
    redis_ = *address;
    prefix_ = testing::TestRedisPrefix();
    TokenKey key;
    key.id = 1;
    key.secret = std::string(32, 'k');
    codec_ = *TokenCodec::Create({key});
    authenticator_ =
        std::make_unique<Authenticator>(codec_.get(), &revocations_);
  }

  void TearDown() override {
    for (auto& node : nodes_) StopNode(*node);
  }

  // `subscriber_backoff`: how long a broken subscription stays down at
  // least (half of it).
  Node& StartNode(const std::string& name,
                  absl::Duration backoff = absl::Milliseconds(20)) {
    auto node = std::make_unique<Node>();
    node->id = absl::StrCat(prefix_, name);
    MessageServiceImpl::Dependencies deps;
    deps.log = db_.log();
    deps.reader = db_.reader();
    deps.read_markers = db_.read_markers();
    deps.authenticator = authenticator_.get();
    Node* raw = node.get();
    deps.make_bus = [this, raw, backoff](message::DeliveryRouter* router,
                                         message::MembershipCache* members)
        -> absl::StatusOr<std::unique_ptr<message::DeliveryBus>> {
      RedisDeliveryBus::Options options;
      options.redis.address = redis_;
      options.node_id = raw->id;
      options.key_prefix = prefix_;
      options.min_backoff = backoff;
      options.max_backoff = backoff;
      options.added_member_checks = {absl::Milliseconds(200), absl::Seconds(1)};
      absl::StatusOr<std::unique_ptr<RedisDeliveryBus>> bus =
          RedisDeliveryBus::Create(options, router, members, db_.reader());
      if (!bus.ok()) return bus.status();
      raw->bus = bus->get();
      return std::unique_ptr<message::DeliveryBus>(*std::move(bus));
    };
    absl::StatusOr<std::unique_ptr<MessageServiceImpl>> service =
        MessageServiceImpl::Create(MessageTestEnv::DefaultOptions(), deps);
    EXPECT_TRUE(service.ok()) << service.status();
    node->service = *std::move(service);
    ServerOptions server;
    server.name = "im.message.v1.MessageService";
    server.listen_address = "127.0.0.1:0";
    node->server = *GrpcServer::Start(server, {node->service.get()});
    node->channel = NewTestChannel(node->server->address());
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  void StopNode(Node& node) {
    if (node.service == nullptr) return;
    node.service->Drain();
    node.server->Shutdown(absl::Seconds(2));
    node.service.reset();
  }

  // Waits until every node is linked (both connections, routes written).
  bool AllConnected() {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      bool all = true;
      for (const auto& node : nodes_) all = all && node->bus->connected();
      if (all) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  uint64_t User(const std::string& name) {
    return CreateUser(*db_.users(), absl::StrCat(name, next_user_++));
  }
  std::string TokenOf(uint64_t user, uint64_t session) {
    return Token(*codec_, user, session);
  }

  // Kills `node`'s subscriber connection on the Redis server.
  void KillSubscription(const Node& node) {
    absl::StatusOr<std::unique_ptr<RedisConnection>> redis =
        RedisConnection::Connect(RedisConnection::Options{redis_});
    ASSERT_TRUE(redis.ok());
    absl::StatusOr<RedisReply> clients = (*redis)->Command({"CLIENT", "LIST"});
    ASSERT_TRUE(clients.ok());
    const std::string name = absl::StrCat("name=im-message-sub-", node.id);
    for (absl::string_view line : absl::StrSplit(clients->str, '\n')) {
      if (!absl::StrContains(line, name)) continue;
      for (absl::string_view field : absl::StrSplit(line, ' ')) {
        if (!absl::StartsWith(field, "id=")) continue;
        absl::StatusOr<RedisReply> killed = (*redis)->Command(
            {"CLIENT", "KILL", "ID", std::string(field.substr(3))});
        ASSERT_TRUE(killed.ok());
        ASSERT_EQ(killed->integer, 1);
        return;
      }
    }
    FAIL() << "no subscriber connection for " << node.id;
  }

  static ChatClient::Options From(
      const absl::flat_hash_map<uint64_t, uint64_t>& cursors) {
    ChatClient::Options options;
    options.hello = ChatClient::ResumeHello(cursors);
    return options;
  }

  RedisAddress redis_;
  std::string prefix_;
  storage::FakeDatabase db_;
  std::unique_ptr<TokenCodec> codec_;
  RevocationSet revocations_;
  std::unique_ptr<Authenticator> authenticator_;
  std::vector<std::unique_ptr<Node>> nodes_;
  int next_user_ = 0;
};

// Two senders on different nodes write into one group at once; a reader
// with a device on each node gets every entry once, in seq order, on both.
TEST_F(MessageClusterTest, ConcurrentSendsOnBothNodesReachEveryDeviceInOrder) {
  Node& a = StartNode("a");
  Node& b = StartNode("b");
  ASSERT_TRUE(AllConnected());
  const uint64_t s1 = User("s1"), s2 = User("s2"), reader = User("r");
  const uint64_t group = CreateGroup(a.channel, TokenOf(s1, 1), {s2, reader});
  ASSERT_NE(group, 0u);
  ChatClient on_a(a.channel, TokenOf(reader, 10), From({{group, 0}}));
  ChatClient on_b(b.channel, TokenOf(reader, 11), From({{group, 0}}));
  ASSERT_TRUE(on_a.AwaitReady());
  ASSERT_TRUE(on_b.AwaitReady());

  constexpr int kPerSender = 150;
  std::vector<std::thread> senders;
  for (int s = 0; s < 2; ++s) {
    senders.emplace_back([&, s] {
      const Node& node = s == 0 ? a : b;
      const std::string token = TokenOf(s == 0 ? s1 : s2, 20 + s);
      for (int i = 0; i < kPerSender; ++i) {
        grpc::Status status = Send(node.channel, token, group,
                                   absl::StrCat("s", s, "-", i), "hello");
        ASSERT_TRUE(status.ok()) << status.error_message();
      }
    });
  }
  for (std::thread& t : senders) t.join();
  const uint64_t last = 1 + 2 * kPerSender;
  ASSERT_TRUE(on_a.AwaitSeq(group, last));
  ASSERT_TRUE(on_b.AwaitSeq(group, last));
  EXPECT_EQ(on_a.Seqs(group), Range(1, last));
  EXPECT_EQ(on_b.Seqs(group), Range(1, last));
  EXPECT_GT(a.bus->stats().notices_received, 0u);
  EXPECT_GT(b.bus->stats().notices_received, 0u);
}

// Typing and receipts cross nodes.
TEST_F(MessageClusterTest, TypingAndReceiptsReachTheOtherNode) {
  Node& a = StartNode("a");
  Node& b = StartNode("b");
  ASSERT_TRUE(AllConnected());
  const uint64_t x = User("x"), y = User("y");
  const uint64_t group = CreateGroup(a.channel, TokenOf(x, 1), {y});
  ASSERT_NE(group, 0u);
  ChatClient x_on_a(a.channel, TokenOf(x, 2), From({{group, 1}}));
  ChatClient y_on_b(b.channel, TokenOf(y, 3), From({{group, 1}}));
  ASSERT_TRUE(x_on_a.AwaitReady());
  ASSERT_TRUE(y_on_b.AwaitReady());

  ASSERT_TRUE(SetTyping(a.channel, TokenOf(x, 2), group).ok());
  EXPECT_TRUE(y_on_b.WaitFor([&](const std::vector<v1::ServerFrame>& frames) {
    for (const auto& frame : frames) {
      if (frame.has_typing() && frame.typing().user_id() == x &&
          frame.typing().conversation_id() == group) {
        return true;
      }
    }
    return false;
  }));
  v1::SendAck ack;
  ASSERT_TRUE(Send(a.channel, TokenOf(x, 2), group, "m1", "hi", &ack).ok());
  ASSERT_TRUE(y_on_b.AwaitSeq(group, ack.seq()));
  ASSERT_TRUE(MarkRead(b.channel, TokenOf(y, 3), group, ack.seq()).ok());
  EXPECT_TRUE(x_on_a.WaitFor([&](const std::vector<v1::ServerFrame>& frames) {
    for (const auto& frame : frames) {
      if (frame.has_receipt() && frame.receipt().user_id() == y &&
          frame.receipt().read_seq() == ack.seq()) {
        return true;
      }
    }
    return false;
  }));
}

// A device leaves node A and resumes on node B with its cursors: what was
// sent meanwhile comes exactly once, then live entries.
TEST_F(MessageClusterTest, ResumeOnTheOtherNodeContinuesAfterTheCursor) {
  Node& a = StartNode("a");
  Node& b = StartNode("b");
  ASSERT_TRUE(AllConnected());
  const uint64_t sender = User("s"), reader = User("r");
  const uint64_t group = CreateGroup(b.channel, TokenOf(sender, 1), {reader});
  ASSERT_NE(group, 0u);
  const std::string sender_token = TokenOf(sender, 1);
  absl::flat_hash_map<uint64_t, uint64_t> cursors;
  {
    ChatClient first(a.channel, TokenOf(reader, 5), From({{group, 0}}));
    ASSERT_TRUE(first.AwaitReady());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(
          Send(b.channel, sender_token, group, absl::StrCat("a", i), "x").ok());
    }
    ASSERT_TRUE(first.AwaitSeq(group, 11));
    EXPECT_EQ(first.Seqs(group), Range(1, 11));
    cursors = first.Cursors();
    first.Cancel();
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(
        Send(a.channel, sender_token, group, absl::StrCat("b", i), "x").ok());
  }
  ChatClient second(b.channel, TokenOf(reader, 5), From(cursors));
  ASSERT_TRUE(second.AwaitReady());
  ASSERT_TRUE(Send(a.channel, sender_token, group, "live", "x").ok());
  ASSERT_TRUE(second.AwaitSeq(group, 22));
  EXPECT_EQ(second.Seqs(group), Range(12, 22));
}

// Node B's subscription breaks and stays down for a while; what node A
// commits meanwhile (the last messages: nothing later reveals a gap) still
// reaches B's streams once B is back, read from the log, once each.
TEST_F(MessageClusterTest, EntriesMissedWhileCutOffAreReadFromTheLog) {
  Node& a = StartNode("a");
  Node& b = StartNode("b", absl::Milliseconds(600));
  ASSERT_TRUE(AllConnected());
  const uint64_t sender = User("s"), reader = User("r");
  const uint64_t group = CreateGroup(a.channel, TokenOf(sender, 1), {reader});
  ASSERT_NE(group, 0u);
  ChatClient on_b(b.channel, TokenOf(reader, 2), From({{group, 1}}));
  ASSERT_TRUE(on_b.AwaitReady());
  const uint64_t resyncs_before = b.bus->stats().user_resyncs;

  KillSubscription(b);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Send(a.channel, TokenOf(sender, 1), group, absl::StrCat("m", i),
                     "while cut off")
                    .ok());
  }
  ASSERT_TRUE(on_b.AwaitSeq(group, 6));
  absl::SleepFor(absl::Milliseconds(300));  // a duplicate would show now
  EXPECT_EQ(on_b.Seqs(group), Range(2, 6));
  EXPECT_GT(b.bus->stats().user_resyncs, resyncs_before);
  EXPECT_TRUE(b.bus->connected());
}

// A member added on node A sees what node B sends right after, although B
// held the group's members from before (B hears of the change through
// Redis); and the added member can send through B at once.
TEST_F(MessageClusterTest, MemberAddedOnOneNodeGetsWhatTheOtherSends) {
  Node& a = StartNode("a");
  Node& b = StartNode("b");
  ASSERT_TRUE(AllConnected());
  const uint64_t owner = User("o"), member = User("m"), late = User("l");
  const uint64_t group = CreateGroup(a.channel, TokenOf(owner, 1), {member});
  ASSERT_NE(group, 0u);
  // B caches the members: a send through B.
  ASSERT_TRUE(Send(b.channel, TokenOf(member, 2), group, "warm", "x").ok());
  ChatClient late_on_b(b.channel, TokenOf(late, 3), ChatClient::Options());
  ASSERT_TRUE(late_on_b.AwaitReady());

  ASSERT_TRUE(AddMembers(a.channel, TokenOf(owner, 1), group, {late}).ok());
  v1::SendAck ack;
  ASSERT_TRUE(
      Send(b.channel, TokenOf(member, 2), group, "right-after", "x", &ack)
          .ok());
  ASSERT_TRUE(late_on_b.AwaitSeq(group, ack.seq()));
  EXPECT_EQ(late_on_b.Seqs(group), Range(3, ack.seq()));
  v1::SendAck own;
  ASSERT_TRUE(Send(b.channel, TokenOf(late, 3), group, "mine", "x", &own).ok());
  EXPECT_EQ(own.seq(), ack.seq() + 1);
}

}  // namespace
}  // namespace im::cluster_testing
