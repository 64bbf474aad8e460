#include "tests/cluster/owned_redis_server.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/service_cluster.h"

namespace im::cluster_testing {

std::unique_ptr<OwnedRedisServer> OwnedRedisServer::StartOrFail() {
  std::string binary;
  for (const char* candidate :
       {"/usr/bin/redis-server", "/usr/local/bin/redis-server",
        "/usr/sbin/redis-server"}) {
    if (access(candidate, X_OK) == 0) {
      binary = candidate;
      break;
    }
  }
  if (binary.empty()) {
    ADD_FAILURE() << "redis-server not found: install Debian's redis-server "
                     "(scripts/deps.sh does)";
    return nullptr;
  }
  absl::StatusOr<int> port = testing::PickFreePort();
  if (!port.ok()) {
    ADD_FAILURE() << "no free port for redis-server: " << port.status();
    return nullptr;
  }
  auto server = std::unique_ptr<OwnedRedisServer>(
      new OwnedRedisServer(binary, RedisAddress{"127.0.0.1", *port}));
  if (!server->StartProcessOrFail("redis")) return nullptr;
  return server;
}

bool OwnedRedisServer::RestartOrFail(absl::Duration down_for) {
  if (process_ != nullptr && !process_->Terminate()) {
    ADD_FAILURE() << "redis-server did not stop cleanly";
    return false;
  }
  process_.reset();
  absl::SleepFor(down_for);
  return StartProcessOrFail(absl::StrCat("redis-restart", starts_));
}

bool OwnedRedisServer::StartProcessOrFail(const std::string& name) {
  ++starts_;
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::vector<std::string> args = {
      "--port",       absl::StrCat(address_.port),
      "--bind",       address_.host,
      "--save",       "",
      "--appendonly", "no",
      "--daemonize",  "no",
      "--logfile",    "",
      "--dir",        tmp != nullptr ? tmp : "/tmp",
  };
  process_ = ServiceProcess::StartProgramOrFail(name, binary_, args,
                                                "Ready to accept connections");
  return process_ != nullptr;
}

}  // namespace im::cluster_testing
