#ifndef IM_TESTS_FAULTS_STALLED_CONSUMER_H_
#define IM_TESTS_FAULTS_STALLED_CONSUMER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/faults/queue_checker.h"

// A client device in a process of its own, so the fault harness can
// SIGSTOP it: the server must then cut its stream (RESOURCE_EXHAUSTED)
// rather than buffer for it, and after SIGCONT the device must reconnect
// and resume with nothing lost. The child is the harness binary run with
// --role=consumer; parent and child talk in lines over its stdin/stdout:
//
//   child:  ready                          session live
//   child:  live                           a stream is live (after Ready)
//   child:  disconnected <code> <message>  a stream ended
//   parent: catchup <conv>:<seq> ...       wait until caught up
//   child:  caught | behind                ...or gave up after 60 s
//   parent: report
//   child:  entry <conv> <seq> <sender> <is_message 0|1> <client_msg_id>
//   child:  end                            then it stops and exits 0

namespace im::faults {

struct ConsumerConfig {
  std::string username;
  std::string password;
  std::string auth_address;
  std::string message_address;
  std::string history_address;
};

// The child side: runs until "report" (or EOF on stdin). Returns the exit
// code.
int RunConsumerProcess(const ConsumerConfig& config);

// The parent side.
class StalledConsumer {
 public:
  // Starts `binary` --role=consumer with `config`; waits for "ready".
  static absl::StatusOr<std::unique_ptr<StalledConsumer>> Start(
      const std::string& binary, const ConsumerConfig& config,
      const std::string& log_file, absl::Duration timeout);
  // Kills the child if it still runs.
  ~StalledConsumer();

  pid_t pid() const { return pid_; }
  void Stop() const;      // SIGSTOP
  void Continue() const;  // SIGCONT

  // Waits until the child's session is live (a stop while it reconnects
  // would stall nothing on the server).
  bool WaitLive(absl::Duration timeout) const;

  // Streams that ended with RESOURCE_EXHAUSTED so far / in total.
  int cuts() const;
  int disconnects() const;

  // Waits until the child holds every conversation through the given seq.
  absl::Status CatchUp(const std::map<uint64_t, uint64_t>& through,
                       absl::Duration timeout);
  // Everything the child's session delivered, per conversation in order;
  // the child exits afterwards.
  absl::StatusOr<std::map<uint64_t, std::vector<LogEntry>>> Report(
      absl::Duration timeout);

 private:
  StalledConsumer() = default;
  void ReadLines();
  absl::StatusOr<std::string> AwaitLine(absl::Duration timeout);
  void Send(const std::string& line);

  pid_t pid_ = 0;
  int to_child_ = -1;
  int from_child_ = -1;
  std::thread reader_;

  mutable absl::Mutex mu_;
  // Answer lines (not "disconnected"), in order.
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
  bool live_ ABSL_GUARDED_BY(mu_) = true;
  int cuts_ ABSL_GUARDED_BY(mu_) = 0;
  int disconnects_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace im::faults

#endif  // IM_TESTS_FAULTS_STALLED_CONSUMER_H_
