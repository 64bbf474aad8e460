#ifndef IM_SERVICES_HISTORY_FAKE_MESSAGE_SERVICE_H_
#define IM_SERVICES_HISTORY_FAKE_MESSAGE_SERVICE_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "im/message/v1/message.grpc.pb.h"
#include "services/common/authenticator.h"
#include "storage/conversation_store.h"

namespace im::history::testing {

// Stands in for the message service in history tests: MarkRead
// authenticates like the real one and moves the marker in a
// ReadMarkerStore (no receipts); every other RPC is UNIMPLEMENTED.
// Records the bearer tokens it received. Thread-safe.
class FakeMessageService final : public message::v1::MessageService::Service {
 public:
  FakeMessageService(const Authenticator* authenticator,
                     storage::ReadMarkerStore* read_markers)
      : authenticator_(authenticator), read_markers_(read_markers) {}

  grpc::Status MarkRead(grpc::ServerContext* context,
                        const message::v1::MarkReadRequest* request,
                        message::v1::MarkReadResponse* response) override;

  // Every MarkRead answers `status` (OK = behave normally).
  void FailWith(absl::Status status);
  // Bearer tokens of the MarkRead calls so far, in order.
  std::vector<std::string> tokens() const;

 private:
  const Authenticator* const authenticator_;
  storage::ReadMarkerStore* const read_markers_;
  mutable absl::Mutex mu_;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace im::history::testing

#endif  // IM_SERVICES_HISTORY_FAKE_MESSAGE_SERVICE_H_
