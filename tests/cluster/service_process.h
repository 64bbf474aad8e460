#ifndef IM_TESTS_CLUSTER_SERVICE_PROCESS_H_
#define IM_TESTS_CLUSTER_SERVICE_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace im::cluster_testing {

// A service binary a test runs: its output goes to <test>.<name>.log in the
// test's undeclared outputs (kept with the test's results), and start-up
// waits for the "listening on <address>" line.
class ServiceProcess {
 public:
  // `binary`: path under the runfiles root, e.g.
  // "services/message/message_main". Null after failing the current test
  // when it does not start listening within `timeout`.
  static std::unique_ptr<ServiceProcess> StartOrFail(
      const std::string& name, const std::string& binary,
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(60));
  // Any program (`path` absolute): start-up waits for a line containing
  // `ready_text`; address() stays empty.
  static std::unique_ptr<ServiceProcess> StartProgramOrFail(
      const std::string& name, const std::string& path,
      const std::vector<std::string>& args, const std::string& ready_text,
      absl::Duration timeout = absl::Seconds(60));
  // Kills the process if it still runs.
  ~ServiceProcess();

  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  const std::string& address() const { return address_; }
  const std::string& name() const { return name_; }

  // SIGKILL, then reaps it.
  void Kill();
  // SIGTERM; true when it exited with status 0 within `timeout` (else it
  // is killed).
  bool Terminate(absl::Duration timeout = absl::Seconds(20));
  // Lines of its log containing `text` so far.
  int CountLogLines(const std::string& text) const;

 private:
  ServiceProcess(std::string name, pid_t pid, std::string log_path)
      : name_(std::move(name)), pid_(pid), log_path_(std::move(log_path)) {}

  // Starts `path` and waits for `ready_text` in its log; with
  // `read_address` the text is followed by the address it listens on.
  static std::unique_ptr<ServiceProcess> Spawn(
      const std::string& name, const std::string& path,
      const std::vector<std::string>& args, const std::string& ready_text,
      bool read_address, absl::Duration timeout);

  const std::string name_;
  pid_t pid_;
  const std::string log_path_;
  std::string address_;
};

}  // namespace im::cluster_testing

#endif  // IM_TESTS_CLUSTER_SERVICE_PROCESS_H_
