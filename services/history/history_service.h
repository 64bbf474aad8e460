#ifndef IM_SERVICES_HISTORY_HISTORY_SERVICE_H_
#define IM_SERVICES_HISTORY_HISTORY_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "im/history/v1/history.grpc.pb.h"
#include "im/message/v1/message.grpc.pb.h"
#include "services/common/authenticator.h"
#include "services/history/conversation_history.h"
#include "storage/conversation_store.h"

namespace im::history {

struct HistoryServiceOptions {
  ConversationHistoryOptions reads;
  // Deadline of a MarkRead forwarded to the message service when the
  // caller's own deadline is later (or unset).
  absl::Duration mark_read_timeout = absl::Seconds(5);
};

// im.history.v1.HistoryService on the synchronous gRPC API: handlers run on
// gRPC's sync-server threads, never on callback threads, so the blocking
// MySQL reads are allowed there. Every call is authenticated first.
// MarkRead is the message service's operation (it stores the marker and
// broadcasts the receipt); this service forwards it with the caller's own
// bearer token, so both RPCs behave identically. The reader, authenticator
// and stub must outlive the service.
class HistoryServiceImpl final : public v1::HistoryService::Service {
 public:
  static absl::StatusOr<std::unique_ptr<HistoryServiceImpl>> Create(
      const HistoryServiceOptions& options,
      storage::ConversationReader* reader, const Authenticator* authenticator,
      std::shared_ptr<message::v1::MessageService::StubInterface>
          message_service);

  grpc::Status GetHistory(grpc::ServerContext* context,
                          const v1::GetHistoryRequest* request,
                          v1::GetHistoryResponse* response) override;
  grpc::Status GetMessages(grpc::ServerContext* context,
                           const v1::GetMessagesRequest* request,
                           v1::GetMessagesResponse* response) override;
  grpc::Status ListConversations(
      grpc::ServerContext* context, const v1::ListConversationsRequest* request,
      v1::ListConversationsResponse* response) override;
  grpc::Status Sync(grpc::ServerContext* context,
                    const v1::SyncRequest* request,
                    v1::SyncResponse* response) override;
  grpc::Status MarkRead(grpc::ServerContext* context,
                        const v1::MarkReadRequest* request,
                        v1::MarkReadResponse* response) override;

 private:
  HistoryServiceImpl(
      const HistoryServiceOptions& options,
      std::unique_ptr<ConversationHistory> history,
      const Authenticator* authenticator,
      std::shared_ptr<message::v1::MessageService::StubInterface>
          message_service)
      : options_(options),
        history_(std::move(history)),
        authenticator_(authenticator),
        message_service_(std::move(message_service)) {}

  const HistoryServiceOptions options_;
  const std::unique_ptr<ConversationHistory> history_;
  const Authenticator* const authenticator_;
  const std::shared_ptr<message::v1::MessageService::StubInterface>
      message_service_;
};

}  // namespace im::history

#endif  // IM_SERVICES_HISTORY_HISTORY_SERVICE_H_
