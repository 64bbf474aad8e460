// Against the test Redis server (tag "redis", IM_TEST_REDIS_ADDR).

#include "services/common/redis_connection.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "services/common/redis_subscriber.h"
#include "services/common/testing/redis_test_server.h"

namespace im {
namespace {

using Type = RedisReply::Type;

TEST(ParseRedisAddressTest, AcceptsHostPortOnly) {
  absl::StatusOr<RedisAddress> v4 = ParseRedisAddress("127.0.0.1:6379");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 6379);
  absl::StatusOr<RedisAddress> v6 = ParseRedisAddress("[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
  for (const char* bad :
       {"", "redis", ":6379", "h:", "h:0", "h:65536", "h:12x", "[]:1"}) {
    EXPECT_EQ(ParseRedisAddress(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(RedisConnectionTest, NothingListeningIsUnavailable) {
  RedisConnection::Options options;
  options.address = {"127.0.0.1", 1};
  EXPECT_EQ(RedisConnection::Connect(options).status().code(),
            absl::StatusCode::kUnavailable);
}

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<RedisAddress> address = testing::TestRedisAddressOrFail();
    ASSERT_TRUE(address.has_value());
    options_.address = *address;
    prefix_ = testing::TestRedisPrefix();
  }

  std::unique_ptr<RedisConnection> Connect() {
    absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
        RedisConnection::Connect(options_);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return connection.ok() ? *std::move(connection) : nullptr;
  }

  RedisConnection::Options options_;
  std::string prefix_;
};

// Replies come back in command order; an error reply is a reply, and the
// connection goes on.
TEST_F(RedisTest, PipelinedRepliesInOrder) {
  auto redis = Connect();
  ASSERT_NE(redis, nullptr);
  const std::string key = prefix_ + "k";
  const std::string binary("a\0b", 3);
  redis->Append({"SET", key, binary});
  redis->Append({"GET", key});
  redis->Append({"INCR", key});  // not a number: error
  redis->Append({"GET", prefix_ + "missing"});
  redis->Append({"DEL", key});
  absl::StatusOr<RedisReply> set = redis->ReadReply();
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->type, Type::kStatus);
  EXPECT_EQ(set->str, "OK");
  absl::StatusOr<RedisReply> get = redis->ReadReply();
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->type, Type::kString);
  EXPECT_EQ(get->str, binary);
  absl::StatusOr<RedisReply> incr = redis->ReadReply();
  ASSERT_TRUE(incr.ok());
  EXPECT_TRUE(incr->is_error());
  absl::StatusOr<RedisReply> missing = redis->ReadReply();
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->type, Type::kNil);
  absl::StatusOr<RedisReply> del = redis->ReadReply();
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->type, Type::kInteger);
  EXPECT_EQ(del->integer, 1);
  EXPECT_FALSE(redis->broken());
}

TEST_F(RedisTest, ReadReplyWithinTimesOutWithNothing) {
  auto redis = Connect();
  ASSERT_NE(redis, nullptr);
  redis->Append({"SUBSCRIBE", prefix_ + "quiet"});
  absl::StatusOr<std::optional<RedisReply>> confirmation =
      redis->ReadReplyWithin(absl::Seconds(5));
  ASSERT_TRUE(confirmation.ok());
  ASSERT_TRUE(confirmation->has_value());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::optional<RedisReply>> nothing =
      redis->ReadReplyWithin(absl::Milliseconds(50));
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
}

// What a subscriber saw, in order.
class Recorder {
 public:
  RedisSubscriber::Callbacks Callbacks() {
    RedisSubscriber::Callbacks callbacks;
    callbacks.on_message = [this](absl::string_view channel,
                                  absl::string_view payload) {
      absl::MutexLock lock(&mu_);
      events_.push_back(absl::StrCat(channel, "=", payload));
    };
    callbacks.on_subscribed = [this] {
      absl::MutexLock lock(&mu_);
      events_.push_back("subscribed");
    };
    callbacks.on_lost = [this] {
      absl::MutexLock lock(&mu_);
      events_.push_back("lost");
    };
    return callbacks;
  }
  bool WaitForCount(const std::string& event, size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<size_t>(
                 std::count(events_.begin(), events_.end(), event)) >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  std::vector<std::string> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
};

// Messages of every channel arrive in publish order; a killed connection
// is reported lost, re-subscribed, and what is published then arrives.
TEST_F(RedisTest, SubscriberDeliversInOrderAndComesBackAfterAKill) {
  Recorder recorder;
  RedisSubscriber::Options options;
  options.connection = options_;
  options.channels = {prefix_ + "a", prefix_ + "b"};
  options.client_name =
      absl::StrCat(prefix_.substr(0, prefix_.size() - 1), "-sub");
  options.min_backoff = absl::Milliseconds(10);
  absl::StatusOr<std::unique_ptr<RedisSubscriber>> subscriber =
      RedisSubscriber::Start(options, recorder.Callbacks());
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  ASSERT_TRUE(recorder.WaitForCount("subscribed", 1));
  EXPECT_TRUE((*subscriber)->subscribed());

  auto redis = Connect();
  ASSERT_NE(redis, nullptr);
  std::vector<std::string> expected = {"subscribed"};
  for (int i = 0; i < 50; ++i) {
    const std::string channel = prefix_ + (i % 2 == 0 ? "a" : "b");
    redis->Append({"PUBLISH", channel, absl::StrCat("m", i)});
    expected.push_back(absl::StrCat(channel, "=m", i));
  }
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<RedisReply> receivers = redis->ReadReply();
    ASSERT_TRUE(receivers.ok());
    EXPECT_EQ(receivers->integer, 1);
  }
  ASSERT_TRUE(recorder.WaitForCount(prefix_ + "b=m49", 1));
  EXPECT_EQ(recorder.events(), expected);

  // Find the subscriber's connection by its name and kill it.
  absl::StatusOr<RedisReply> clients = redis->Command({"CLIENT", "LIST"});
  ASSERT_TRUE(clients.ok());
  std::string id;
  for (absl::string_view line : absl::StrSplit(clients->str, '\n')) {
    if (!absl::StrContains(line, absl::StrCat("name=", options.client_name))) {
      continue;
    }
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      if (absl::StartsWith(field, "id=")) id = std::string(field.substr(3));
    }
  }
  ASSERT_FALSE(id.empty()) << clients->str;
  absl::StatusOr<RedisReply> killed =
      redis->Command({"CLIENT", "KILL", "ID", id});
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(killed->integer, 1);
  ASSERT_TRUE(recorder.WaitForCount("lost", 1));
  ASSERT_TRUE(recorder.WaitForCount("subscribed", 2));
  EXPECT_EQ((*subscriber)->losses(), 1u);
  absl::StatusOr<RedisReply> after =
      redis->Command({"PUBLISH", prefix_ + "a", "after"});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->integer, 1);
  ASSERT_TRUE(recorder.WaitForCount(prefix_ + "a=after", 1));
  (*subscriber)->Stop();
}

}  // namespace
}  // namespace im
