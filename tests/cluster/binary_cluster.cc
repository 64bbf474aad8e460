#include "tests/cluster/binary_cluster.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/common/grpc_server.h"
#include "services/common/testing/redis_test_server.h"
#include "services/message/testing/message_test_env.h"
#include "tests/cluster/cluster_test_support.h"

namespace im::cluster_testing {

std::unique_ptr<BinaryCluster> BinaryCluster::StartOrFail(
    const Options& options) {
  std::optional<RedisAddress> redis = options.redis;
  if (!redis.has_value()) redis = testing::TestRedisAddressOrFail();
  if (!redis.has_value()) return nullptr;
  auto cluster = std::unique_ptr<BinaryCluster>(new BinaryCluster());
  cluster->test_db_ = storage::testing::TestDatabase::CreateOrFail();
  if (cluster->test_db_ == nullptr) return nullptr;
  absl::StatusOr<std::unique_ptr<storage::MysqlDatabase>> db =
      storage::MysqlDatabase::Create(cluster->test_db_->options());
  if (!db.ok()) {
    ADD_FAILURE() << db.status();
    return nullptr;
  }
  cluster->db_ = *std::move(db);

  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string key_file =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/cluster_token_keys");
  std::ofstream(key_file) << TokenCodec::GenerateKeyFile(1);
  absl::StatusOr<std::unique_ptr<TokenCodec>> codec =
      TokenCodec::FromKeyFile(key_file);
  if (!codec.ok()) {
    ADD_FAILURE() << codec.status();
    return nullptr;
  }
  cluster->codec_ = *std::move(codec);

  const std::string prefix = testing::TestRedisPrefix();
  const std::vector<std::string> common = {
      "--listen=127.0.0.1:0",
      "--metrics_listen=",
      absl::StrCat("--mysql_dsn=", cluster->test_db_->dsn()),
      "--nomigrate",
      absl::StrCat("--token_key_file=", key_file),
      absl::StrCat("--redis=", redis->host, ":", redis->port),
      absl::StrCat("--redis_prefix=", prefix),
  };
  for (int i = 0; i < 2; ++i) {
    std::vector<std::string> args = common;
    args.push_back(absl::StrCat("--node_id=", prefix, "p", i));
    // No auth service here: the revocation feed retries in the background.
    args.push_back("--auth_addr=127.0.0.1:1");
    args.push_back(
        absl::StrCat("--lease_ttl=", absl::FormatDuration(options.lease_ttl)));
    args.push_back("--grace_period=200ms");
    args.push_back("--coalesce_window=20ms");
    auto process = ServiceProcess::StartOrFail(
        absl::StrCat("presence", i), "services/presence/presence_main", args);
    if (process == nullptr) return nullptr;
    cluster->presences_.push_back(std::move(process));
  }
  for (int i = 0; i < 2; ++i) {
    std::vector<std::string> args = common;
    args.push_back(absl::StrCat("--node_id=", prefix, "m", i));
    args.push_back("--auth_addr=");
    args.push_back(
        absl::StrCat("--presence_addr=", cluster->presences_[i]->address()));
    args.push_back("--send_rate=0");
    auto process = ServiceProcess::StartOrFail(
        absl::StrCat("message", i), "services/message/message_main", args);
    if (process == nullptr) return nullptr;
    cluster->messages_.push_back(std::move(process));
  }
  // Linked: each message node has written its (empty) routes.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (const auto& node : cluster->messages_) {
    while (node->CountLogLines("Redis delivery bus: connected") == 0) {
      if (absl::Now() > deadline) {
        ADD_FAILURE() << node->name() << " did not link through Redis";
        return nullptr;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  return cluster;
}

BinaryCluster::~BinaryCluster() {
  // Message nodes first, so presence hears their streams close.
  for (auto& node : messages_) node->Terminate();
  for (auto& node : presences_) node->Terminate();
}

std::shared_ptr<grpc::Channel> BinaryCluster::MessageChannel(int i) {
  return message::testing::NewTestChannel(messages_.at(i)->address());
}

std::shared_ptr<grpc::Channel> BinaryCluster::PresenceChannel(int i) {
  return message::testing::NewTestChannel(presences_.at(i)->address());
}

std::shared_ptr<grpc::Channel> BinaryCluster::MessageNodesChannel() {
  std::vector<std::string> addresses;
  for (const auto& node : messages_) addresses.push_back(node->address());
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(absl::StrJoin(addresses, ","), TlsOptions());
  EXPECT_TRUE(channel.ok()) << channel.status();
  return channel.ok() ? *channel : nullptr;
}

uint64_t BinaryCluster::CreateUser(const std::string& name) {
  return cluster_testing::CreateUser(*db_->users(), name);
}

std::string BinaryCluster::Token(uint64_t user_id, uint64_t session_id) const {
  return cluster_testing::Token(*codec_, user_id, session_id);
}

}  // namespace im::cluster_testing
