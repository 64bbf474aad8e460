#ifndef IM_SERVICES_MESSAGE_MESSAGE_SERVICE_H_
#define IM_SERVICES_MESSAGE_MESSAGE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "im/message/v1/message.grpc.pb.h"
#include "services/common/authenticator.h"
#include "services/common/worker_pool.h"
#include "services/message/delivery_bus.h"
#include "services/message/delivery_router.h"
#include "services/message/log_writer.h"
#include "services/message/membership_cache.h"
#include "services/message/message_validation.h"
#include "services/message/rate_limiter.h"
#include "services/message/stream_session.h"
#include "services/message/timer_queue.h"
#include "services/presence/device_presence_reporter.h"
#include "storage/conversation_store.h"

namespace im::message {

// Chat, Send, Publish and Subscribe are registered raw (ByteBuffer): a
// message whose strings are not valid UTF-8 cannot be parsed by protobuf,
// and parsing it ourselves lets Chat answer INVALID_ARGUMENT on that request
// and keep the stream open (and Send/Publish answer INVALID_ARGUMENT rather
// than gRPC's INTERNAL); server frames are serialized once per fan-out.
using MessageServiceBase = v1::MessageService::WithRawCallbackMethod_Chat<
    v1::MessageService::WithRawCallbackMethod_Send<
        v1::MessageService::WithRawCallbackMethod_Publish<
            v1::MessageService::WithRawCallbackMethod_Subscribe<
                v1::MessageService::WithCallbackMethod_MarkRead<
                    v1::MessageService::WithCallbackMethod_SetTyping<
                        v1::MessageService::WithCallbackMethod_Poll<
                            v1::MessageService::WithCallbackMethod_GetOrCreateDirect<
                                v1::MessageService::WithCallbackMethod_CreateGroup<
                                    v1::MessageService::WithCallbackMethod_AddMembers<
                                        v1::MessageService::WithCallbackMethod_RemoveMember<
                                            v1::MessageService::WithCallbackMethod_Leave<
                                                v1::MessageService::WithCallbackMethod_SetRole<
                                                    v1::MessageService::WithCallbackMethod_ListMembers<
                                                        v1::MessageService::WithCallbackMethod_GetConversation<
                                                            v1::MessageService::Service>>>>>>>>>>>>>>>;

inline UserRateLimiter::Options RateOptions(double per_second, double burst) {
  UserRateLimiter::Options options;
  options.rate_per_second = per_second;
  options.burst = burst;
  return options;
}

// Everything a message node needs besides its stores.
struct MessageServiceOptions {
  MessageLimits limits;
  // Sends (Chat, Send, Publish) and typing indicators per user.
  UserRateLimiter::Options send_rate = RateOptions(50, 100);
  UserRateLimiter::Options typing_rate = RateOptions(2, 5);
  LogWriter::Options writer;
  StreamSession::Options stream;
  DeliveryRouter::Options router;
  MembershipCache::Options membership_cache;
  // Threads and queue of the pool for blocking reads and RPC work.
  int worker_threads = 8;
  size_t worker_queue = 20000;
  // Poll: wait_ms is capped here; max_entries defaults to and is capped at
  // poll_max_entries; an answer holds at most poll_max_bytes of frames.
  absl::Duration poll_wait_cap = absl::Seconds(30);
  uint32_t poll_max_entries = 500;
  size_t poll_max_bytes = 2 << 20;
  // CreateGroup / AddMembers bound.
  uint32_t max_group_members = 1000;
  // How long a typing indicator lasts unless renewed.
  absl::Duration typing_ttl = absl::Seconds(5);
};

// Counters for logs, tests and (later) the shared metrics interceptor.
struct MessageServiceStats {
  std::atomic<uint64_t> sends_acked{0};
  std::atomic<uint64_t> sends_duplicate{0};
  std::atomic<uint64_t> sends_failed{0};
  std::atomic<uint64_t> streams_opened{0};
  std::atomic<uint64_t> streams_closed{0};
};

// im.message.v1.MessageService on the callback API. Owns the node's
// pipeline: validation and rate limits -> membership cache -> LogWriter
// (group commit) -> DeliveryRouter -> StreamSessions. Nothing here blocks a
// gRPC callback thread: store calls run on the writer's shard threads or
// the worker pool.
class MessageServiceImpl final : public MessageServiceBase {
 public:
  struct Dependencies {
    storage::ConversationLog* log = nullptr;
    storage::ConversationReader* reader = nullptr;
    storage::ReadMarkerStore* read_markers = nullptr;
    const Authenticator* authenticator = nullptr;
    // Optional: streams of revoked sessions end with UNAUTHENTICATED.
    RevocationSet* revocations = nullptr;
    // Optional: told when device streams open and close.
    presence::DevicePresenceReporter* presence = nullptr;
    // Optional: links this node's deliveries with other nodes (for example
    // RedisDeliveryBus::Create). Called once by Create with the node's
    // router and membership cache; the service owns the bus and publishes
    // through it. Unset: this node alone (the router).
    std::function<absl::StatusOr<std::unique_ptr<DeliveryBus>>(
        DeliveryRouter* router, MembershipCache* members)>
        make_bus;
  };

  // INVALID_ARGUMENT for missing dependencies or bad options.
  static absl::StatusOr<std::unique_ptr<MessageServiceImpl>> Create(
      const MessageServiceOptions& options, const Dependencies& deps);

  // Drains first when that has not happened.
  ~MessageServiceImpl() override;

  // SIGTERM: refuses new streams, sends and changes (UNAVAILABLE), commits
  // what is queued so its acks go out, then ends every stream with
  // UNAVAILABLE once its queued frames are written. Blocks until the writer
  // is done; idempotent.
  void Drain();

  DeliveryRouter& router() { return *router_; }
  LogWriter::Stats writer_stats() const { return writer_->stats(); }
  const MessageServiceStats& stats() const { return stats_; }

  // --- RPCs ---
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Chat(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* MarkRead(
      grpc::CallbackServerContext* context,
      const v1::MarkReadRequest* request,
      v1::MarkReadResponse* response) override;
  grpc::ServerUnaryReactor* SetTyping(
      grpc::CallbackServerContext* context,
      const v1::SetTypingRequest* request,
      v1::SetTypingResponse* response) override;
  grpc::ServerUnaryReactor* Poll(grpc::CallbackServerContext* context,
                                 const v1::PollRequest* request,
                                 v1::PollResponse* response) override;
  grpc::ServerUnaryReactor* GetOrCreateDirect(
      grpc::CallbackServerContext* context,
      const v1::GetOrCreateDirectRequest* request,
      v1::GetOrCreateDirectResponse* response) override;
  grpc::ServerUnaryReactor* CreateGroup(
      grpc::CallbackServerContext* context,
      const v1::CreateGroupRequest* request,
      v1::CreateGroupResponse* response) override;
  grpc::ServerUnaryReactor* AddMembers(
      grpc::CallbackServerContext* context,
      const v1::AddMembersRequest* request,
      v1::AddMembersResponse* response) override;
  grpc::ServerUnaryReactor* RemoveMember(
      grpc::CallbackServerContext* context,
      const v1::RemoveMemberRequest* request,
      v1::RemoveMemberResponse* response) override;
  grpc::ServerUnaryReactor* Leave(grpc::CallbackServerContext* context,
                                  const v1::LeaveRequest* request,
                                  v1::LeaveResponse* response) override;
  grpc::ServerUnaryReactor* SetRole(grpc::CallbackServerContext* context,
                                    const v1::SetRoleRequest* request,
                                    v1::SetRoleResponse* response) override;
  grpc::ServerUnaryReactor* ListMembers(
      grpc::CallbackServerContext* context,
      const v1::ListMembersRequest* request,
      v1::ListMembersResponse* response) override;
  grpc::ServerUnaryReactor* GetConversation(
      grpc::CallbackServerContext* context,
      const v1::GetConversationRequest* request,
      v1::GetConversationResponse* response) override;

 private:
  template <typename Reactor>
  friend class LiveStreamReactor;
  friend class ChatReactor;
  friend class SubscribeReactor;
  friend class PollState;
  friend class PollCall;

  using SendDone = LogWriter::SendDone;
  using ReadDone = absl::AnyInvocable<void(absl::StatusOr<uint64_t>) &&>;

  MessageServiceImpl(const MessageServiceOptions& options,
                     const Dependencies& deps);

  // Starts a registered session's replay once the bus routes to it.
  void StartSession(const std::shared_ptr<StreamSession>& session,
                    const v1::Resume& resume);
  // The caller of an RPC: UNAUTHENTICATED, or PERMISSION_DENIED for
  // internal callers (they act for no user).
  absl::StatusOr<Caller> AuthenticateUser(
      const grpc::CallbackServerContext& context) const;
  bool accepting() const { return accepting_.load(); }
  uint64_t NextStreamId() { return next_stream_id_.fetch_add(1) + 1; }

  // The one send path (Chat, Send, Publish): validate, rate limit, check
  // membership, queue for the writer. `done` runs exactly once.
  void SubmitSend(const Caller& caller, uint64_t conversation_id,
                  std::string client_msg_id, v1::Message message,
                  SendDone done);
  // Moves the read marker, then sends a Receipt to every member's streams.
  void SubmitMarkRead(const Caller& caller, uint64_t conversation_id,
                      uint64_t seq, ReadDone done);
  // A typing indicator to the other members' streams (not stored).
  void SubmitTyping(const Caller& caller, uint64_t conversation_id,
                    absl::AnyInvocable<void(absl::Status) &&> done);
  // Runs `work` on the worker pool; `on_refused` when the pool refuses.
  void RunBlocking(absl::AnyInvocable<void() &&> work,
                   absl::AnyInvocable<void(absl::Status) &&> on_refused);
  // The direct conversation of a and b, created (and its first entry
  // published) when missing.
  void GetOrCreateDirectConversation(
      uint64_t a, uint64_t b,
      absl::AnyInvocable<void(absl::StatusOr<storage::DirectResult>) &&> done);
  // The caller of a unary RPC; on failure `reactor` is finished.
  std::optional<Caller> AuthenticateUnary(
      const grpc::CallbackServerContext& context,
      grpc::ServerUnaryReactor* reactor) const;

  using FillResponse =
      absl::AnyInvocable<void(const storage::MemberChange&) &&>;
  using MemberChangeFactory =
      absl::AnyInvocable<LogWriter::MemberChangeOp(uint64_t actor) &&>;
  template <typename Response>
  static FillResponse SeqInto(Response* response);
  // A member-change RPC: authenticates, refuses `valid`'s error, then runs
  // the change on the conversation's writer shard and answers `reactor`
  // with `fill(change)` or the error.
  void RunMemberChange(const grpc::CallbackServerContext& context,
                       grpc::ServerUnaryReactor* reactor,
                       uint64_t conversation_id, absl::Status valid,
                       MemberChangeFactory make_op, FillResponse fill);
  // The caller's active membership; NOT_FOUND "conversation not found"
  // otherwise. Blocking.
  absl::StatusOr<storage::MemberRecord> ActiveMember(uint64_t conversation_id,
                                                     uint64_t user_id);
  // A read RPC for members only: authenticates, refuses `valid`'s error,
  // checks membership and runs `read` on the worker pool; answers `reactor`
  // with its status.
  void RunMemberRead(
      const grpc::CallbackServerContext& context,
      grpc::ServerUnaryReactor* reactor, uint64_t conversation_id,
      absl::Status valid,
      absl::AnyInvocable<absl::Status(const storage::MemberRecord& me) &&> read);
  // Ends the streams of a revoked session.
  void OnSessionRevoked(uint64_t session_id, uint64_t user_id);

  const MessageServiceOptions options_;
  const Dependencies deps_;
  MessageServiceStats stats_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<UserRateLimiter> send_limiter_;
  std::unique_ptr<UserRateLimiter> typing_limiter_;
  std::unique_ptr<MembershipCache> members_;
  std::unique_ptr<DeliveryRouter> router_;
  // Set by Create when Dependencies::make_bus is; `bus_` is it or router_.
  std::unique_ptr<DeliveryBus> cluster_bus_;
  DeliveryBus* bus_ = nullptr;
  std::unique_ptr<LogWriter> writer_;
  std::atomic<bool> accepting_{true};
  std::atomic<uint64_t> next_stream_id_{0};
  // Shared with the revocation listener, which may run once after removal.
  struct RevocationHook {
    absl::Mutex mu;
    MessageServiceImpl* service ABSL_GUARDED_BY(mu) = nullptr;
  };
  std::shared_ptr<RevocationHook> revocation_hook_;
  uint64_t revocation_listener_id_ = 0;
  // (service account, user) -> their direct conversation, for Publish.
  absl::Mutex direct_mu_;
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, uint64_t> direct_ids_
      ABSL_GUARDED_BY(direct_mu_);
  absl::Mutex drain_mu_;
  bool drained_ ABSL_GUARDED_BY(drain_mu_) = false;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_MESSAGE_SERVICE_H_
