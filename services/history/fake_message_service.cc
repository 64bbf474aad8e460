#include "services/history/fake_message_service.h"

#include "services/common/status.h"

namespace im::history::testing {

grpc::Status FakeMessageService::MarkRead(
    grpc::ServerContext* context, const message::v1::MarkReadRequest* request,
    message::v1::MarkReadResponse* response) {
  absl::StatusOr<absl::string_view> token = BearerToken(*context);
  absl::Status failure;
  {
    absl::MutexLock lock(&mu_);
    tokens_.emplace_back(token.ok() ? *token : "");
    failure = failure_;
  }
  if (!failure.ok()) return ToGrpcStatus(failure);
  absl::StatusOr<Caller> caller = authenticator_->Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<uint64_t> read_seq =
      read_markers_->MarkRead(caller->user_id, request->conversation_id(),
                              request->seq(), authenticator_->Now());
  if (!read_seq.ok()) return ToGrpcStatus(read_seq.status());
  response->set_read_seq(*read_seq);
  return grpc::Status::OK;
}

void FakeMessageService::FailWith(absl::Status status) {
  absl::MutexLock lock(&mu_);
  failure_ = std::move(status);
}

std::vector<std::string> FakeMessageService::tokens() const {
  absl::MutexLock lock(&mu_);
  return tokens_;
}

}  // namespace im::history::testing
