#ifndef IM_TESTS_CLUSTER_BINARY_CLUSTER_H_
#define IM_TESTS_CLUSTER_BINARY_CLUSTER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/common/access_token.h"
#include "services/common/redis_connection.h"
#include "storage/mysql/mysql_database.h"
#include "storage/testing/test_database.h"
#include "tests/cluster/service_process.h"

namespace im::cluster_testing {

// The real binaries as several nodes: presence p0 and p1, message m0
// (reporting devices to p0) and m1 (to p1), on a fresh MariaDB test
// database (IM_TEST_MYSQL_*) and linked through Redis under a prefix of
// their own. No auth service: tokens
// are minted here with the key file the services load.
class BinaryCluster {
 public:
  struct Options {
    // Presence --lease_ttl (message nodes heartbeat every third of it).
    absl::Duration lease_ttl = absl::Seconds(3);
    // The Redis server linking the nodes; unset: the shared test server
    // (IM_TEST_REDIS_ADDR).
    std::optional<RedisAddress> redis;
  };

  // Null after failing the current test.
  static std::unique_ptr<BinaryCluster> StartOrFail(const Options& options);
  ~BinaryCluster();

  ServiceProcess& message(int i) { return *messages_.at(i); }
  ServiceProcess& presence(int i) { return *presences_.at(i); }
  std::shared_ptr<grpc::Channel> MessageChannel(int i);
  std::shared_ptr<grpc::Channel> PresenceChannel(int i);
  // Every message node behind one comma-separated address (MakeChannel):
  // calls go round robin to the nodes that are up.
  std::shared_ptr<grpc::Channel> MessageNodesChannel();

  uint64_t CreateUser(const std::string& name);
  std::string Token(uint64_t user_id, uint64_t session_id) const;
  storage::MysqlDatabase& db() { return *db_; }

 private:
  BinaryCluster() = default;

  std::unique_ptr<storage::testing::TestDatabase> test_db_;
  std::unique_ptr<storage::MysqlDatabase> db_;
  std::unique_ptr<TokenCodec> codec_;
  std::vector<std::unique_ptr<ServiceProcess>> presences_;
  std::vector<std::unique_ptr<ServiceProcess>> messages_;
};

}  // namespace im::cluster_testing

#endif  // IM_TESTS_CLUSTER_BINARY_CLUSTER_H_
