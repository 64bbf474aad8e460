#ifndef IM_TESTS_SUPPORT_TCP_PROXY_H_
#define IM_TESTS_SUPPORT_TCP_PROXY_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace im::testing {

// A TCP relay on 127.0.0.1 for fault tests: clients connect to address()
// and their bytes go to the target and back. Faults: cut every connection
// at once (RST, like a network drop), refuse new connections for a while,
// or black-hole what the server sends (the client's requests still arrive,
// their answers are lost) before a cut. One thread; thread-safe controls.
class TcpProxy {
 public:
  // Listens on 127.0.0.1:0 and forwards to `target` (host:port, IPv4).
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(
      const std::string& target);
  ~TcpProxy();

  // "127.0.0.1:<port>".
  const std::string& address() const { return address_; }

  // Resets every open connection; returns how many there were.
  int CutAll();
  // While true, new connections are accepted and closed at once.
  void SetRefusing(bool refusing);
  // While true, bytes from the target are read and discarded.
  void SetBlackholeToClient(bool blackhole);
  // Connections accepted so far.
  int accepted() const { return accepted_.load(); }
  int open_connections() const;

 private:
  struct Pair;
  TcpProxy() = default;
  void Run();
  void Wake();

  std::string address_;
  std::string target_host_;
  int target_port_ = 0;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> refusing_{false};
  std::atomic<bool> blackhole_{false};
  std::atomic<int> accepted_{0};

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Pair>> pairs_ ABSL_GUARDED_BY(mu_);
  int last_cut_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t cuts_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t cuts_done_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace im::testing

#endif  // IM_TESTS_SUPPORT_TCP_PROXY_H_
