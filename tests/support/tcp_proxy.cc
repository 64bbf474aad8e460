#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace im::testing {

struct TcpProxy::Pair {
  int client_fd = -1;
  int server_fd = -1;
  // Bytes read from one side that the other has not taken yet.
  std::string to_server;
  std::string to_client;
  bool closed = false;
};

namespace {

void SetNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}

// Closes with RST instead of FIN, as a dropped network path looks to gRPC.
void Reset(int fd) {
  if (fd < 0) return;
  linger hard = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  close(fd);
}

// Writes what it can of `pending`; false when the socket failed.
bool Flush(int fd, std::string& pending) {
  while (!pending.empty()) {
    const ssize_t n = send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n > 0) {
      pending.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(
    const std::string& target) {
  std::vector<std::string> parts = absl::StrSplit(target, ':');
  int port = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port)) {
    return absl::InvalidArgumentError("target must be host:port: " + target);
  }
  std::unique_ptr<TcpProxy> proxy(new TcpProxy());
  proxy->target_host_ = parts[0] == "localhost" ? "127.0.0.1" : parts[0];
  proxy->target_port_ = port;
  proxy->listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(proxy->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(proxy->listen_fd_, reinterpret_cast<sockaddr*>(&addr),
           sizeof(addr)) != 0 ||
      listen(proxy->listen_fd_, 128) != 0) {
    return absl::UnavailableError(
        absl::StrCat("proxy cannot listen: ", strerror(errno)));
  }
  socklen_t len = sizeof(addr);
  getsockname(proxy->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  proxy->address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  SetNonBlocking(proxy->listen_fd_);
  if (pipe(proxy->wake_pipe_) != 0) {
    return absl::InternalError("pipe failed");
  }
  SetNonBlocking(proxy->wake_pipe_[0]);
  proxy->thread_ = std::thread([p = proxy.get()] { p->Run(); });
  return proxy;
}

TcpProxy::~TcpProxy() {
  stopping_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (auto& pair : pairs_) {
    Reset(pair->client_fd);
    Reset(pair->server_fd);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_pipe_[0] >= 0) close(wake_pipe_[0]);
  if (wake_pipe_[1] >= 0) close(wake_pipe_[1]);
}

void TcpProxy::Wake() {
  const char byte = 1;
  if (write(wake_pipe_[1], &byte, 1) < 0) {
    // The pipe is full: the proxy thread wakes anyway.
  }
}

int TcpProxy::CutAll() {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = ++cuts_requested_;
  Wake();
  auto done = [this, ticket]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return cuts_done_ >= ticket;
  };
  mu_.Await(absl::Condition(&done));
  return last_cut_;
}

void TcpProxy::SetRefusing(bool refusing) { refusing_.store(refusing); }

void TcpProxy::SetBlackholeToClient(bool blackhole) {
  blackhole_.store(blackhole);
}

int TcpProxy::open_connections() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(pairs_.size());
}

void TcpProxy::Run() {
  std::vector<pollfd> fds;
  while (!stopping_.load()) {
    fds.clear();
    fds.push_back({wake_pipe_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    {
      absl::MutexLock lock(&mu_);
      for (auto& pair : pairs_) {
        // Read a side only while the other has taken what it was given.
        fds.push_back({pair->client_fd,
                       static_cast<short>(
                           (pair->to_server.empty() ? POLLIN : 0) |
                           (pair->to_client.empty() ? 0 : POLLOUT)),
                       0});
        fds.push_back({pair->server_fd,
                       static_cast<short>(
                           (pair->to_client.empty() ? POLLIN : 0) |
                           (pair->to_server.empty() ? 0 : POLLOUT)),
                       0});
      }
    }
    if (poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR) break;
    if (stopping_.load()) break;

    absl::MutexLock lock(&mu_);
    if (fds[0].revents & POLLIN) {
      char drain[64];
      while (read(wake_pipe_[0], drain, sizeof(drain)) > 0) {
      }
    }
    if (cuts_done_ < cuts_requested_) {
      last_cut_ = static_cast<int>(pairs_.size());
      for (auto& pair : pairs_) {
        Reset(pair->client_fd);
        Reset(pair->server_fd);
      }
      pairs_.clear();
      cuts_done_ = cuts_requested_;
      continue;
    }
    // Existing pairs (fds[2..] in pairs_ order; new pairs come after).
    const size_t known = (fds.size() - 2) / 2;
    for (size_t i = 0; i < known && i < pairs_.size(); ++i) {
      Pair& pair = *pairs_[i];
      const pollfd& client = fds[2 + 2 * i];
      const pollfd& server = fds[3 + 2 * i];
      char buffer[64 * 1024];
      auto pump = [&](int from, std::string& into, bool discard) {
        const ssize_t n = recv(from, buffer, sizeof(buffer), 0);
        if (n > 0) {
          if (!discard) into.append(buffer, static_cast<size_t>(n));
          return true;
        }
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                         errno == EINTR);
      };
      bool ok = true;
      if (client.revents & (POLLIN | POLLHUP | POLLERR)) {
        ok = ok && pump(pair.client_fd, pair.to_server, false);
      }
      if (server.revents & (POLLIN | POLLHUP | POLLERR)) {
        ok = ok && pump(pair.server_fd, pair.to_client, blackhole_.load());
      }
      ok = ok && Flush(pair.server_fd, pair.to_server) &&
           Flush(pair.client_fd, pair.to_client);
      if (!ok) pair.closed = true;
    }
    for (auto it = pairs_.begin(); it != pairs_.end();) {
      if ((*it)->closed) {
        Reset((*it)->client_fd);
        Reset((*it)->server_fd);
        it = pairs_.erase(it);
      } else {
        ++it;
      }
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        const int client_fd = accept(listen_fd_, nullptr, nullptr);
        if (client_fd < 0) break;
        accepted_.fetch_add(1);
        if (refusing_.load()) {
          Reset(client_fd);
          continue;
        }
        const int server_fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in target{};
        target.sin_family = AF_INET;
        target.sin_port = htons(static_cast<uint16_t>(target_port_));
        inet_pton(AF_INET, target_host_.c_str(), &target.sin_addr);
        if (connect(server_fd, reinterpret_cast<sockaddr*>(&target),
                    sizeof(target)) != 0) {
          Reset(server_fd);
          Reset(client_fd);
          continue;
        }
        int one = 1;
        setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(server_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        SetNonBlocking(client_fd);
        SetNonBlocking(server_fd);
        auto pair = std::make_unique<Pair>();
        pair->client_fd = client_fd;
        pair->server_fd = server_fd;
        pairs_.push_back(std::move(pair));
      }
    }
  }
}

}  // namespace im::testing
