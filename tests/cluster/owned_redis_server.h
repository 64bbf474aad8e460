#ifndef IM_TESTS_CLUSTER_OWNED_REDIS_SERVER_H_
#define IM_TESTS_CLUSTER_OWNED_REDIS_SERVER_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "services/common/redis_connection.h"
#include "tests/cluster/service_process.h"

namespace im::cluster_testing {

// A redis-server of one test's own (Debian's binary, a free port on
// 127.0.0.1, no persistence), for tests that stop or restart Redis: the
// shared IM_TEST_REDIS_ADDR server must stay up for the other tests.
class OwnedRedisServer {
 public:
  // Null after failing the current test (no redis-server binary, no start).
  static std::unique_ptr<OwnedRedisServer> StartOrFail();

  const RedisAddress& address() const { return address_; }

  // Stops the server (SIGTERM: routes and subscriptions are gone, nothing
  // persisted), waits `down_for` and starts an empty one on the same port.
  // False after failing the current test.
  bool RestartOrFail(absl::Duration down_for);

 private:
  OwnedRedisServer(std::string binary, RedisAddress address)
      : binary_(std::move(binary)), address_(std::move(address)) {}
  bool StartProcessOrFail(const std::string& name);

  const std::string binary_;
  const RedisAddress address_;
  int starts_ = 0;
  std::unique_ptr<ServiceProcess> process_;
};

}  // namespace im::cluster_testing

#endif  // IM_TESTS_CLUSTER_OWNED_REDIS_SERVER_H_
