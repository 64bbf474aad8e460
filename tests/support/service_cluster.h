#ifndef IM_TESTS_SUPPORT_SERVICE_CLUSTER_H_
#define IM_TESTS_SUPPORT_SERVICE_CLUSTER_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/access_token.h"

// The four real service binaries (auth, presence, message, history) as
// child processes on free loopback ports over one MySQL database, each
// under a supervisor that starts it again when it exits, the way
// scripts/run does. Tests kill them, wait for them to come back SERVING and
// count exits that nobody asked for (crashes).

namespace im::testing {

enum class Service { kAuth = 0, kPresence, kMessage, kHistory };
inline constexpr std::array<Service, 4> kAllServices = {
    Service::kAuth, Service::kPresence, Service::kMessage, Service::kHistory};

// "auth", "presence", ...
const char* ServiceName(Service service);
// The grpc.health.v1 name, e.g. "im.auth.v1.AuthService".
const char* HealthName(Service service);

class ServiceCluster {
 public:
  struct Options {
    // Paths of auth_main, presence_main, message_main, history_main (by
    // Service).
    std::array<std::string, 4> binaries;
    // mysql://user:password@host:port/database; the services migrate it.
    std::string mysql_dsn;
    // Logs (<service>.log) and the token key file go here.
    std::string work_dir;
    // Extra flags per service (by Service), after the standard ones.
    std::array<std::vector<std::string>, 4> extra_flags;
    // Delay before starting a service again after it exited.
    absl::Duration restart_delay = absl::Milliseconds(300);
    std::string log_level = "warn";
  };

  // Where one service runs.
  struct ProcessStats {
    int starts = 0;
    int exits = 0;
    // Exits not caused by Kill/Stop: crashes, or a service giving up.
    int unexpected_exits = 0;
    // Of those, deaths by a signal nobody sent (SIGSEGV, SIGABRT, ...).
    int crashes = 0;
    // wait status of the last unexpected exit.
    int last_unexpected_status = 0;
  };

  // Picks ports, writes a token key file, starts every service (without
  // waiting for SERVING: see WaitAllServing).
  static absl::StatusOr<std::unique_ptr<ServiceCluster>> Start(
      const Options& options);
  // Stop().
  ~ServiceCluster();

  // SIGTERM to every service (they drain), SIGKILL after `grace`; the
  // supervisors stop restarting. Idempotent.
  void Stop(absl::Duration grace = absl::Seconds(10));

  // 127.0.0.1:port of `service`'s gRPC listener.
  const std::string& address(Service service) const;
  // The key file every service verifies tokens with, and a codec over it
  // (tests mint tokens of their own, expired or otherwise).
  const std::string& token_key_file() const { return key_file_; }
  const TokenCodec& tokens() const { return *codec_; }

  // Waits until the health service reports SERVING for `service`'s name.
  // DEADLINE_EXCEEDED naming the last answer when it does not in time.
  absl::Status WaitServing(Service service, absl::Duration timeout) const;
  absl::Status WaitAllServing(absl::Duration timeout) const;

  // Sends `signal` to the running process of `service` (FAILED_PRECONDITION
  // when none runs). SIGKILL/SIGTERM count as asked-for exits; the
  // supervisor starts the service again after restart_delay, or not before
  // `down_for` has passed.
  absl::Status Kill(Service service, int signal,
                    absl::Duration down_for = absl::ZeroDuration());
  // Pid of the running process, 0 while it is down.
  pid_t pid(Service service) const;
  ProcessStats stats(Service service) const;

 private:
  struct Supervised {
    Service service;
    std::vector<std::string> argv;
    std::string log_file;
    std::thread thread;
    pid_t pid = 0;
    bool exit_expected = false;
    absl::Time restart_not_before = absl::InfinitePast();
    ProcessStats stats;
  };

  explicit ServiceCluster(const Options& options) : options_(options) {}
  void Supervise(Supervised* process);

  const Options options_;
  std::string key_file_;
  std::unique_ptr<TokenCodec> codec_;
  std::array<std::string, 4> addresses_;

  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // By Service; the threads read and write their entry under mu_.
  std::array<std::unique_ptr<Supervised>, 4> processes_;
};

// A free TCP port on 127.0.0.1 (bound, read back and released; a race with
// other processes is possible but unlikely).
absl::StatusOr<int> PickFreePort();

}  // namespace im::testing

#endif  // IM_TESTS_SUPPORT_SERVICE_CLUSTER_H_
