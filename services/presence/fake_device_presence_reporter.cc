#include "services/presence/fake_device_presence_reporter.h"

namespace im::presence {

void FakeDevicePresenceReporter::OnStreamOpened(const DeviceStream& stream) {
  absl::MutexLock lock(&mu_);
  Session& session = sessions_[stream.session_id];
  session.user_id = stream.user_id;
  ++session.streams;
  calls_.push_back(Call{true, stream});
}

void FakeDevicePresenceReporter::OnStreamClosed(uint64_t user_id,
                                                uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  DeviceStream stream;
  stream.user_id = user_id;
  stream.session_id = session_id;
  calls_.push_back(Call{false, stream});
  auto it = sessions_.find(session_id);
  if (it == sessions_.end() || it->second.user_id != user_id) {
    ++unmatched_closes_;
    return;
  }
  if (--it->second.streams == 0) sessions_.erase(it);
}

int FakeDevicePresenceReporter::OpenStreams(uint64_t session_id) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? 0 : it->second.streams;
}

bool FakeDevicePresenceReporter::IsOnline(uint64_t user_id) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, session] : sessions_) {
    if (session.user_id == user_id) return true;
  }
  return false;
}

std::vector<FakeDevicePresenceReporter::Call>
FakeDevicePresenceReporter::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

int FakeDevicePresenceReporter::unmatched_closes() const {
  absl::MutexLock lock(&mu_);
  return unmatched_closes_;
}

}  // namespace im::presence
