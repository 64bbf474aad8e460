#include "services/history/history_service.h"

#include <grpcpp/client_context.h>

#include <utility>

#include "services/common/status.h"

namespace im::history {
namespace {

// Authenticates the call, runs `read` for the caller and moves its answer
// into `response`.
template <typename Request, typename Response, typename Read>
grpc::Status Serve(const Authenticator& authenticator,
                   const grpc::ServerContext& context, const Request& request,
                   Response* response, Read read) {
  absl::StatusOr<Caller> caller = authenticator.Authenticate(context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<Response> result = read(caller->user_id, request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HistoryServiceImpl>> HistoryServiceImpl::Create(
    const HistoryServiceOptions& options, storage::ConversationReader* reader,
    const Authenticator* authenticator,
    std::shared_ptr<message::v1::MessageService::StubInterface>
        message_service) {
  if (authenticator == nullptr || message_service == nullptr) {
    return absl::InvalidArgumentError(
        "HistoryServiceImpl needs an authenticator and a message service stub");
  }
  if (options.mark_read_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("mark_read_timeout must be positive");
  }
  absl::StatusOr<std::unique_ptr<ConversationHistory>> history =
      ConversationHistory::Create(options.reads, reader);
  if (!history.ok()) return history.status();
  return std::unique_ptr<HistoryServiceImpl>(
      new HistoryServiceImpl(options, *std::move(history), authenticator,
                             std::move(message_service)));
}

grpc::Status HistoryServiceImpl::GetHistory(
    grpc::ServerContext* context, const v1::GetHistoryRequest* request,
    v1::GetHistoryResponse* response) {
  return Serve(*authenticator_, *context, *request, response,
               [this](uint64_t user_id, const v1::GetHistoryRequest& r) {
                 return history_->GetHistory(user_id, r);
               });
}

grpc::Status HistoryServiceImpl::GetMessages(
    grpc::ServerContext* context, const v1::GetMessagesRequest* request,
    v1::GetMessagesResponse* response) {
  return Serve(*authenticator_, *context, *request, response,
               [this](uint64_t user_id, const v1::GetMessagesRequest& r) {
                 return history_->GetMessages(user_id, r);
               });
}

grpc::Status HistoryServiceImpl::ListConversations(
    grpc::ServerContext* context, const v1::ListConversationsRequest* request,
    v1::ListConversationsResponse* response) {
  return Serve(*authenticator_, *context, *request, response,
               [this](uint64_t user_id, const v1::ListConversationsRequest& r) {
                 return history_->ListConversations(user_id, r);
               });
}

grpc::Status HistoryServiceImpl::Sync(grpc::ServerContext* context,
                                      const v1::SyncRequest* request,
                                      v1::SyncResponse* response) {
  return Serve(*authenticator_, *context, *request, response,
               [this](uint64_t user_id, const v1::SyncRequest& r) {
                 return history_->Sync(user_id, r);
               });
}

grpc::Status HistoryServiceImpl::MarkRead(grpc::ServerContext* context,
                                          const v1::MarkReadRequest* request,
                                          v1::MarkReadResponse* response) {
  // Checked here too, so a bad token never costs a hop.
  absl::StatusOr<Caller> caller = authenticator_->Authenticate(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<absl::string_view> token = BearerToken(*context);
  if (!token.ok()) return ToGrpcStatus(token.status());

  // Propagates the caller's deadline and cancellation to the hop.
  std::unique_ptr<grpc::ClientContext> forward =
      grpc::ClientContext::FromServerContext(*context);
  const auto cap = absl::ToChronoTime(absl::Now() + options_.mark_read_timeout);
  if (context->deadline() > cap) forward->set_deadline(cap);
  AttachBearerToken(forward.get(), *token);

  message::v1::MarkReadRequest forwarded;
  forwarded.set_conversation_id(request->conversation_id());
  forwarded.set_seq(request->seq());
  message::v1::MarkReadResponse answer;
  const grpc::Status status =
      message_service_->MarkRead(forward.get(), forwarded, &answer);
  if (!status.ok()) return status;
  response->set_read_seq(answer.read_seq());
  return grpc::Status::OK;
}

}  // namespace im::history
