#include "tests/cluster/owned_redis_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace im::cluster_testing {
namespace {

// A port nothing listens on right now (the kernel's pick for port 0).
int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

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
  const int port = FreeLoopbackPort();
  if (port == 0) {
    ADD_FAILURE() << "no free port for redis-server";
    return nullptr;
  }
  auto server = std::unique_ptr<OwnedRedisServer>(
      new OwnedRedisServer(binary, RedisAddress{"127.0.0.1", port}));
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
