#ifndef IM_SERVICES_PRESENCE_FAKE_DEVICE_PRESENCE_REPORTER_H_
#define IM_SERVICES_PRESENCE_FAKE_DEVICE_PRESENCE_REPORTER_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/presence/device_presence_reporter.h"

namespace im::presence {

// Records stream opens and closes in memory, for tests of the message
// service. Thread-safe.
class FakeDevicePresenceReporter final : public DevicePresenceReporter {
 public:
  struct Call {
    bool opened = false;  // false: closed
    DeviceStream stream;  // kind and name are set for opens only
  };

  void OnStreamOpened(const DeviceStream& stream) override;
  void OnStreamClosed(uint64_t user_id, uint64_t session_id) override;

  // Open streams of one session, and whether any session of the user has
  // one.
  int OpenStreams(uint64_t session_id) const;
  bool IsOnline(uint64_t user_id) const;
  // Every call so far, in order.
  std::vector<Call> calls() const;
  // Closes that matched no open stream (a bug in the caller).
  int unmatched_closes() const;

 private:
  struct Session {
    uint64_t user_id = 0;
    int streams = 0;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  int unmatched_closes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_FAKE_DEVICE_PRESENCE_REPORTER_H_
