#include "services/message/message_service.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/common/conversation_proto.h"
#include "services/common/proto_time.h"
#include "services/common/status.h"
#include "services/common/text.h"
#include "services/message/rpc_helpers.h"

namespace im::message {
namespace {

using ::google::protobuf::Timestamp;

Timestamp ToProtoTime(absl::Time t) {
  Timestamp out;
  SetProtoTime(t, &out);
  return out;
}

// INVALID_ARGUMENT for a 0 id, FAILED_PRECONDITION for more than `limit`.
absl::Status ValidateMemberIds(absl::Span<const uint64_t> user_ids,
                               uint32_t limit) {
  if (std::find(user_ids.begin(), user_ids.end(), 0) != user_ids.end()) {
    return absl::InvalidArgumentError("user ids may not be 0");
  }
  if (user_ids.size() > limit) {
    return absl::FailedPreconditionError(
        absl::StrCat("group too large (limit ", limit, " members)"));
  }
  return absl::OkStatus();
}

}  // namespace

// ------------------------------------------------------------ service ----

absl::StatusOr<std::unique_ptr<MessageServiceImpl>> MessageServiceImpl::Create(
    const MessageServiceOptions& options, const Dependencies& deps) {
  if (deps.log == nullptr || deps.reader == nullptr ||
      deps.read_markers == nullptr || deps.authenticator == nullptr) {
    return absl::InvalidArgumentError(
        "message service needs a log, a reader, read markers and an "
        "authenticator");
  }
  if (options.worker_threads < 1) {
    return absl::InvalidArgumentError("worker_threads must be at least 1");
  }
  if (options.stream.max_queued_frames < 2 ||
      options.stream.max_queued_bytes < 1024 ||
      options.stream.replay_page_size < 1) {
    return absl::InvalidArgumentError(
        "stream queue bounds must allow at least 2 frames and 1 KiB, and "
        "replay pages at least 1 entry");
  }
  auto service = std::unique_ptr<MessageServiceImpl>(
      new MessageServiceImpl(options, deps));
  service->bus_ = service->router_.get();
  if (deps.make_bus) {
    absl::StatusOr<std::unique_ptr<DeliveryBus>> bus =
        deps.make_bus(service->router_.get(), service->members_.get());
    if (!bus.ok()) return bus.status();
    service->cluster_bus_ = *std::move(bus);
    service->bus_ = service->cluster_bus_.get();
  }
  absl::StatusOr<std::unique_ptr<LogWriter>> writer =
      LogWriter::Create(options.writer, deps.log, service->members_.get(),
                        service->bus_);
  if (!writer.ok()) return writer.status();
  service->writer_ = *std::move(writer);
  if (deps.revocations != nullptr) {
    std::shared_ptr<RevocationHook> hook = service->revocation_hook_;
    service->revocation_listener_id_ = deps.revocations->AddListener(
        [hook](uint64_t session_id, uint64_t user_id) {
          absl::MutexLock lock(&hook->mu);
          if (hook->service != nullptr) {
            hook->service->OnSessionRevoked(session_id, user_id);
          }
        });
  }
  return service;
}

MessageServiceImpl::MessageServiceImpl(const MessageServiceOptions& options,
                                       const Dependencies& deps)
    : options_(options),
      deps_(deps),
      revocation_hook_(std::make_shared<RevocationHook>()) {
  WorkerPool::Options pool_options;
  pool_options.name = "message-worker";
  pool_options.threads = options_.worker_threads;
  pool_options.max_queue = options_.worker_queue;
  pool_ = std::make_unique<WorkerPool>(pool_options);
  timers_ = std::make_unique<TimerQueue>();
  send_limiter_ = std::make_unique<UserRateLimiter>(options_.send_rate);
  typing_limiter_ = std::make_unique<UserRateLimiter>(options_.typing_rate);
  members_ = std::make_unique<MembershipCache>(options_.membership_cache,
                                               deps_.reader, pool_.get());
  router_ = std::make_unique<DeliveryRouter>(options_.router);
  absl::MutexLock lock(&revocation_hook_->mu);
  revocation_hook_->service = this;
}

MessageServiceImpl::~MessageServiceImpl() {
  if (deps_.revocations != nullptr && revocation_listener_id_ != 0) {
    deps_.revocations->RemoveListener(revocation_listener_id_);
  }
  {
    absl::MutexLock lock(&revocation_hook_->mu);
    revocation_hook_->service = nullptr;
  }
  if (writer_ != nullptr) Drain();
  // Queued work may still use the cache, router and writer: run it first.
  pool_.reset();
  timers_.reset();
}

void MessageServiceImpl::Drain() {
  {
    absl::MutexLock lock(&drain_mu_);
    if (drained_) return;
    drained_ = true;
  }
  accepting_.store(false);
  // Commits everything queued; each request's ack reaches its stream.
  writer_->Stop();
  bus_->Stop();
  for (const auto& session : router_->AllSessions()) {
    session->CloseWhenIdle(absl::UnavailableError(
        "server is shutting down; reconnect and resume"));
  }
}

void MessageServiceImpl::StartSession(
    const std::shared_ptr<StreamSession>& session, const v1::Resume& resume) {
  bus_->WhenRoutable(session->user_id(),
                     [session, resume] { session->Start(resume); });
}

void MessageServiceImpl::OnSessionRevoked(uint64_t session_id,
                                          uint64_t user_id) {
  for (const auto& session : router_->SessionsOf(user_id)) {
    if (session->identity().auth_session_id == session_id) {
      session->Close(absl::UnauthenticatedError("session has been revoked"));
    }
  }
}

absl::StatusOr<Caller> MessageServiceImpl::AuthenticateUser(
    const grpc::CallbackServerContext& context) const {
  absl::StatusOr<Caller> caller = deps_.authenticator->Authenticate(context);
  if (!caller.ok()) return caller.status();
  if (caller->is_internal() || caller->user_id == 0) {
    return absl::PermissionDeniedError(
        "internal callers act for no user and may not call this method");
  }
  return caller;
}

void MessageServiceImpl::RunBlocking(
    absl::AnyInvocable<void() &&> work,
    absl::AnyInvocable<void(absl::Status) &&> on_refused) {
  absl::Status submitted = pool_->Submit(std::move(work));
  if (!submitted.ok()) {
    std::move(on_refused)(absl::UnavailableError("server is busy; retry"));
  }
}

void MessageServiceImpl::SubmitSend(const Caller& caller,
                                    uint64_t conversation_id,
                                    std::string client_msg_id,
                                    v1::Message message, SendDone done) {
  SendDone counted = [this, done = std::move(done)](
                         absl::StatusOr<SendResult> result) mutable {
    if (!result.ok()) {
      stats_.sends_failed.fetch_add(1);
    } else if (result->duplicate) {
      stats_.sends_duplicate.fetch_add(1);
    } else {
      stats_.sends_acked.fetch_add(1);
    }
    std::move(done)(std::move(result));
  };
  if (absl::Status valid = ValidateSend(options_.limits, conversation_id,
                                        client_msg_id, message);
      !valid.ok()) {
    std::move(counted)(valid);
    return;
  }
  if (!accepting()) {
    std::move(counted)(ShuttingDown());
    return;
  }
  if (!send_limiter_->TryAcquire(caller.user_id, absl::Now())) {
    std::move(counted)(absl::ResourceExhaustedError(
        "send rate limit exceeded; slow down and retry"));
    return;
  }
  storage::AppendRequest request;
  request.conversation_id = conversation_id;
  request.sender_id = caller.user_id;
  request.client_msg_id = std::move(client_msg_id);
  request.message = std::move(message);
  members_->Get(conversation_id,
                [this, request = std::move(request),
                 done = std::move(counted)](
                    absl::StatusOr<MembersPtr> members) mutable {
                  if (!members.ok()) {
                    std::move(done)(HideMembership(members.status()));
                    return;
                  }
                  if (!(*members)->IsMember(request.sender_id)) {
                    std::move(done)(ConversationNotFound());
                    return;
                  }
                  writer_->Append(std::move(request), std::move(done));
                });
}

void MessageServiceImpl::SubmitMarkRead(const Caller& caller,
                                        uint64_t conversation_id, uint64_t seq,
                                        ReadDone done) {
  if (conversation_id == 0) {
    std::move(done)(absl::InvalidArgumentError("conversation_id is required"));
    return;
  }
  if (seq == 0) {
    std::move(done)(absl::OutOfRangeError("seq must be at least 1"));
    return;
  }
  auto shared_done = std::make_shared<ReadDone>(std::move(done));
  const uint64_t user_id = caller.user_id;
  RunBlocking(
      [this, user_id, conversation_id, seq, shared_done] {
        absl::StatusOr<uint64_t> read_seq = deps_.read_markers->MarkRead(
            user_id, conversation_id, seq, absl::Now());
        if (!read_seq.ok()) {
          std::move (*shared_done)(HideMembership(read_seq.status()));
          return;
        }
        if (*read_seq == seq) {
          v1::ServerFrame frame;
          v1::Receipt* receipt = frame.mutable_receipt();
          receipt->set_conversation_id(conversation_id);
          receipt->set_user_id(user_id);
          receipt->set_read_seq(*read_seq);
          FramePtr shared = MakeFrame(std::move(frame));
          members_->Get(conversation_id,
                        [this, shared](absl::StatusOr<MembersPtr> members) {
                          if (!members.ok()) return;
                          bus_->PublishEphemeral(
                              shared, (*members)->member_ids, 0);
                        });
        }
        std::move (*shared_done)(*read_seq);
      },
      [shared_done](absl::Status status) {
        std::move (*shared_done)(status);
      });
}

void MessageServiceImpl::SubmitTyping(
    const Caller& caller, uint64_t conversation_id,
    absl::AnyInvocable<void(absl::Status) &&> done) {
  if (conversation_id == 0) {
    std::move(done)(absl::InvalidArgumentError("conversation_id is required"));
    return;
  }
  if (!typing_limiter_->TryAcquire(caller.user_id, absl::Now())) {
    std::move(done)(absl::ResourceExhaustedError(
        "typing indicator rate limit exceeded"));
    return;
  }
  const uint64_t user_id = caller.user_id;
  members_->Get(conversation_id, [this, user_id, conversation_id,
                                  done = std::move(done)](
                                     absl::StatusOr<MembersPtr> members) mutable {
    if (!members.ok()) {
      std::move(done)(HideMembership(members.status()));
      return;
    }
    if (!(*members)->IsMember(user_id)) {
      std::move(done)(ConversationNotFound());
      return;
    }
    v1::ServerFrame frame;
    v1::Typing* typing = frame.mutable_typing();
    typing->set_conversation_id(conversation_id);
    typing->set_user_id(user_id);
    *typing->mutable_expires_at() =
        ToProtoTime(absl::Now() + options_.typing_ttl);
    bus_->PublishEphemeral(MakeFrame(std::move(frame)),
                              (*members)->member_ids, user_id);
    std::move(done)(absl::OkStatus());
  });
}

// ------------------------------------------------------------- unary ----

grpc::ServerUnaryReactor* MessageServiceImpl::Send(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Caller> caller = AuthenticateUnary(*context, reactor);
  if (!caller.has_value()) return reactor;
  v1::SendRequest parsed;
  if (absl::Status status = ParseRequest(*request, &parsed); !status.ok()) {
    FinishUnary(reactor, status);
    return reactor;
  }
  const uint64_t conversation_id = parsed.conversation_id();
  std::string client_msg_id = parsed.client_msg_id();
  SubmitSend(*caller, conversation_id, client_msg_id,
             std::move(*parsed.mutable_message()),
             [reactor, response, conversation_id,
              client_msg_id](absl::StatusOr<SendResult> result) {
               if (!result.ok()) {
                 FinishUnary(reactor, result.status());
                 return;
               }
               v1::SendResponse out;
               *out.mutable_ack() =
                   MakeAck(0, conversation_id, client_msg_id, *result);
               SerializeResponse(out, response);
               reactor->Finish(grpc::Status::OK);
             });
  return reactor;
}

void MessageServiceImpl::GetOrCreateDirectConversation(
    uint64_t a, uint64_t b,
    absl::AnyInvocable<void(absl::StatusOr<storage::DirectResult>) &&> done) {
  auto shared_done = std::make_shared<
      absl::AnyInvocable<void(absl::StatusOr<storage::DirectResult>) &&>>(
      std::move(done));
  RunBlocking(
      [this, a, b, shared_done] {
        absl::StatusOr<storage::DirectResult> result =
            deps_.log->GetOrCreateDirect(a, b, "", absl::Now());
        if (!result.ok() || !result->created ||
            !result->change.entry.has_value()) {
          std::move(*shared_done)(std::move(result));
          return;
        }
        storage::MemberChange change = result->change;
        // Answer after the first entry went out, so nothing the caller does
        // next can overtake it. A refused publish (drain) loses nothing:
        // streams read the entry from the log.
        writer_->PublishCreated(
            std::move(change),
            [shared_done, result = std::move(result)](absl::Status) mutable {
              std::move(*shared_done)(std::move(result));
            });
      },
      [shared_done](absl::Status status) { std::move(*shared_done)(status); });
}

grpc::ServerUnaryReactor* MessageServiceImpl::Publish(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = deps_.authenticator->Authenticate(*context);
  if (!caller.ok()) {
    FinishUnary(reactor, caller.status());
    return reactor;
  }
  if (absl::Status role = RequireRole(*caller, {auth::v1::ROLE_SERVICE});
      !role.ok()) {
    FinishUnary(reactor, role);
    return reactor;
  }
  v1::PublishRequest parsed;
  if (absl::Status status = ParseRequest(*request, &parsed); !status.ok()) {
    FinishUnary(reactor, status);
    return reactor;
  }
  auto send = [this, reactor, response, caller = *caller,
               client_msg_id = parsed.client_msg_id(),
               message = parsed.message()](uint64_t conversation_id) mutable {
    SubmitSend(caller, conversation_id, client_msg_id, std::move(message),
               [reactor, response, conversation_id,
                client_msg_id](absl::StatusOr<SendResult> result) {
                 if (!result.ok()) {
                   FinishUnary(reactor, result.status());
                   return;
                 }
                 v1::PublishResponse out;
                 *out.mutable_ack() =
                     MakeAck(0, conversation_id, client_msg_id, *result);
                 SerializeResponse(out, response);
                 reactor->Finish(grpc::Status::OK);
               });
  };
  switch (parsed.target_case()) {
    case v1::PublishRequest::kConversationId:
      send(parsed.conversation_id());
      return reactor;
    case v1::PublishRequest::kUserId:
      break;
    case v1::PublishRequest::TARGET_NOT_SET:
      FinishUnary(reactor, absl::InvalidArgumentError(
                               "target (conversation_id or user_id) is required"));
      return reactor;
  }
  const uint64_t user_id = parsed.user_id();
  if (user_id == 0 || user_id == caller->user_id) {
    FinishUnary(reactor, absl::InvalidArgumentError(
                             "user_id must name another user"));
    return reactor;
  }
  // Bad input must not create a conversation.
  if (absl::Status valid =
          ValidateSend(options_.limits, /*conversation_id=*/1,
                       parsed.client_msg_id(), parsed.message());
      !valid.ok()) {
    FinishUnary(reactor, valid);
    return reactor;
  }
  const std::pair<uint64_t, uint64_t> key{caller->user_id, user_id};
  std::optional<uint64_t> known;
  {
    absl::MutexLock lock(&direct_mu_);
    if (auto it = direct_ids_.find(key); it != direct_ids_.end()) {
      known = it->second;
    }
  }
  if (known.has_value()) {
    send(*known);
    return reactor;
  }
  GetOrCreateDirectConversation(
      caller->user_id, user_id,
      [this, reactor, key, send = std::move(send)](
          absl::StatusOr<storage::DirectResult> direct) mutable {
        if (!direct.ok()) {
          FinishUnary(reactor, direct.status());
          return;
        }
        const uint64_t conversation_id = direct->change.conversation.id;
        {
          absl::MutexLock lock(&direct_mu_);
          if (direct_ids_.size() >= 100000) direct_ids_.clear();
          direct_ids_[key] = conversation_id;
        }
        send(conversation_id);
      });
  return reactor;
}

std::optional<Caller> MessageServiceImpl::AuthenticateUnary(
    const grpc::CallbackServerContext& context,
    grpc::ServerUnaryReactor* reactor) const {
  absl::StatusOr<Caller> caller = AuthenticateUser(context);
  if (!caller.ok()) {
    FinishUnary(reactor, caller.status());
    return std::nullopt;
  }
  return *caller;
}

grpc::ServerUnaryReactor* MessageServiceImpl::MarkRead(
    grpc::CallbackServerContext* context, const v1::MarkReadRequest* request,
    v1::MarkReadResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Caller> caller = AuthenticateUnary(*context, reactor);
  if (!caller.has_value()) return reactor;
  SubmitMarkRead(*caller, request->conversation_id(), request->seq(),
                 [reactor, response](absl::StatusOr<uint64_t> read_seq) {
                   if (read_seq.ok()) response->set_read_seq(*read_seq);
                   FinishUnary(reactor, read_seq.status());
                 });
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::SetTyping(
    grpc::CallbackServerContext* context, const v1::SetTypingRequest* request,
    v1::SetTypingResponse* /*response*/) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Caller> caller = AuthenticateUnary(*context, reactor);
  if (!caller.has_value()) return reactor;
  SubmitTyping(*caller, request->conversation_id(),
               [reactor](absl::Status status) { FinishUnary(reactor, status); });
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::GetOrCreateDirect(
    grpc::CallbackServerContext* context,
    const v1::GetOrCreateDirectRequest* request,
    v1::GetOrCreateDirectResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Caller> caller = AuthenticateUnary(*context, reactor);
  if (!caller.has_value()) return reactor;
  if (request->user_id() == 0 || request->user_id() == caller->user_id) {
    FinishUnary(reactor, absl::InvalidArgumentError(
                             "user_id must name another user"));
    return reactor;
  }
  if (!accepting()) {
    FinishUnary(reactor, ShuttingDown());
    return reactor;
  }
  const uint64_t viewer = caller->user_id;
  GetOrCreateDirectConversation(
      viewer, request->user_id(),
      [reactor, response, viewer](absl::StatusOr<storage::DirectResult> direct) {
        if (direct.ok()) {
          *response->mutable_conversation() =
              ConversationProto(direct->change.conversation, viewer);
          response->set_created(direct->created);
        }
        FinishUnary(reactor, direct.status());
      });
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::CreateGroup(
    grpc::CallbackServerContext* context, const v1::CreateGroupRequest* request,
    v1::CreateGroupResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<Caller> caller = AuthenticateUnary(*context, reactor);
  if (!caller.has_value()) return reactor;
  std::vector<uint64_t> members(request->member_user_ids().begin(),
                                request->member_user_ids().end());
  absl::Status valid = ValidateLabel("title", request->title(), 1, 128);
  if (valid.ok()) valid = ValidateMemberIds(members, options_.max_group_members);
  if (valid.ok() && !accepting()) valid = ShuttingDown();
  if (!valid.ok()) {
    FinishUnary(reactor, valid);
    return reactor;
  }
  const uint64_t creator = caller->user_id;
  RunBlocking(
      [this, reactor, response, creator, members = std::move(members),
       title = request->title()] {
        absl::StatusOr<storage::MemberChange> change =
            deps_.log->CreateGroup(creator, title, members,
                                   options_.max_group_members, "", absl::Now());
        if (!change.ok()) {
          FinishUnary(reactor, change.status());
          return;
        }
        *response->mutable_conversation() =
            ConversationProto(change->conversation, creator);
        // Answered after the creation entry went out, so nothing the caller
        // does next can overtake it.
        writer_->PublishCreated(*std::move(change), [reactor](absl::Status) {
          reactor->Finish(grpc::Status::OK);
        });
      },
      [reactor](absl::Status status) { FinishUnary(reactor, status); });
  return reactor;
}

template <typename Response>
MessageServiceImpl::FillResponse MessageServiceImpl::SeqInto(
    Response* response) {
  return [response](const storage::MemberChange& change) {
    response->set_seq(change.entry.has_value() ? change.entry->seq() : 0);
  };
}

void MessageServiceImpl::RunMemberChange(
    const grpc::CallbackServerContext& context,
    grpc::ServerUnaryReactor* reactor, uint64_t conversation_id,
    absl::Status valid, MemberChangeFactory make_op, FillResponse fill) {
  std::optional<Caller> caller = AuthenticateUnary(context, reactor);
  if (!caller.has_value()) return;
  if (valid.ok() && conversation_id == 0) {
    valid = absl::InvalidArgumentError("conversation_id is required");
  }
  if (valid.ok() && !accepting()) valid = ShuttingDown();
  if (!valid.ok()) {
    FinishUnary(reactor, valid);
    return;
  }
  writer_->ChangeMembers(
      conversation_id, std::move(make_op)(caller->user_id),
      [reactor, fill = std::move(fill)](
          absl::StatusOr<storage::MemberChange> change) mutable {
        if (change.ok()) std::move(fill)(*change);
        FinishUnary(reactor, change.status());
      });
}

grpc::ServerUnaryReactor* MessageServiceImpl::AddMembers(
    grpc::CallbackServerContext* context, const v1::AddMembersRequest* request,
    v1::AddMembersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const uint64_t conversation_id = request->conversation_id();
  const uint32_t max_members = options_.max_group_members;
  std::vector<uint64_t> users(request->user_ids().begin(),
                              request->user_ids().end());
  absl::Status valid = users.empty()
                           ? absl::InvalidArgumentError("user_ids is empty")
                           : ValidateMemberIds(users, max_members);
  RunMemberChange(
      *context, reactor, conversation_id, valid,
      [conversation_id, max_members, users = std::move(users)](
          uint64_t actor) mutable -> LogWriter::MemberChangeOp {
        return [conversation_id, max_members, actor, users = std::move(users)](
                   storage::ConversationLog& log,
                   const std::string& client_msg_id, absl::Time now) {
          return log.AddMembers(conversation_id, actor, users, max_members,
                                client_msg_id, now);
        };
      },
      [response](const storage::MemberChange& change) {
        response->set_seq(change.entry.has_value() ? change.entry->seq() : 0);
        for (uint64_t user_id : change.affected) {
          response->add_added_user_ids(user_id);
        }
      });
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::RemoveMember(
    grpc::CallbackServerContext* context,
    const v1::RemoveMemberRequest* request,
    v1::RemoveMemberResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const uint64_t conversation_id = request->conversation_id();
  const uint64_t user_id = request->user_id();
  RunMemberChange(
      *context, reactor, conversation_id,
      user_id == 0 ? absl::InvalidArgumentError("user_id is required")
                   : absl::OkStatus(),
      [conversation_id, user_id](uint64_t actor) -> LogWriter::MemberChangeOp {
        return [conversation_id, actor, user_id](
                   storage::ConversationLog& log,
                   const std::string& client_msg_id, absl::Time now) {
          return log.RemoveMember(conversation_id, actor, user_id,
                                  client_msg_id, now);
        };
      },
      SeqInto(response));
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::Leave(
    grpc::CallbackServerContext* context, const v1::LeaveRequest* request,
    v1::LeaveResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const uint64_t conversation_id = request->conversation_id();
  RunMemberChange(
      *context, reactor, conversation_id, absl::OkStatus(),
      [conversation_id](uint64_t actor) -> LogWriter::MemberChangeOp {
        return [conversation_id, actor](storage::ConversationLog& log,
                                        const std::string& client_msg_id,
                                        absl::Time now) {
          return log.Leave(conversation_id, actor, client_msg_id, now);
        };
      },
      SeqInto(response));
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::SetRole(
    grpc::CallbackServerContext* context, const v1::SetRoleRequest* request,
    v1::SetRoleResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const uint64_t conversation_id = request->conversation_id();
  const uint64_t user_id = request->user_id();
  const v1::MemberRole role = request->role();
  absl::Status valid;
  if (user_id == 0) {
    valid = absl::InvalidArgumentError("user_id is required");
  } else if (role != v1::MEMBER_ROLE_ADMIN && role != v1::MEMBER_ROLE_MEMBER) {
    valid = absl::InvalidArgumentError(
        "role must be MEMBER_ROLE_ADMIN or MEMBER_ROLE_MEMBER");
  }
  RunMemberChange(
      *context, reactor, conversation_id, valid,
      [conversation_id, user_id, role](uint64_t actor) -> LogWriter::MemberChangeOp {
        return [conversation_id, actor, user_id, role](
                   storage::ConversationLog& log,
                   const std::string& client_msg_id, absl::Time now) {
          return log.SetRole(conversation_id, actor, user_id, role,
                             client_msg_id, now);
        };
      },
      SeqInto(response));
  return reactor;
}

absl::StatusOr<storage::MemberRecord> MessageServiceImpl::ActiveMember(
    uint64_t conversation_id, uint64_t user_id) {
  absl::StatusOr<storage::MemberRecord> member =
      deps_.reader->GetMember(conversation_id, user_id);
  if (!member.ok()) return HideMembership(member.status());
  if (!member->active()) return ConversationNotFound();
  return member;
}

void MessageServiceImpl::RunMemberRead(
    const grpc::CallbackServerContext& context,
    grpc::ServerUnaryReactor* reactor, uint64_t conversation_id,
    absl::Status valid,
    absl::AnyInvocable<absl::Status(const storage::MemberRecord& me) &&> read) {
  std::optional<Caller> caller = AuthenticateUnary(context, reactor);
  if (!caller.has_value()) return;
  if (valid.ok() && conversation_id == 0) {
    valid = absl::InvalidArgumentError("conversation_id is required");
  }
  if (!valid.ok()) {
    FinishUnary(reactor, valid);
    return;
  }
  const uint64_t viewer = caller->user_id;
  RunBlocking(
      [this, reactor, viewer, conversation_id, read = std::move(read)]() mutable {
        absl::StatusOr<storage::MemberRecord> me =
            ActiveMember(conversation_id, viewer);
        FinishUnary(reactor, me.ok() ? std::move(read)(*me) : me.status());
      },
      [reactor](absl::Status status) { FinishUnary(reactor, status); });
}

grpc::ServerUnaryReactor* MessageServiceImpl::ListMembers(
    grpc::CallbackServerContext* context, const v1::ListMembersRequest* request,
    v1::ListMembersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const uint32_t limit = request->limit() == 0 ? 200 : request->limit();
  const uint64_t conversation_id = request->conversation_id();
  const uint64_t after = request->after_user_id();
  RunMemberRead(
      *context, reactor, conversation_id,
      limit > 1000 ? absl::InvalidArgumentError("limit must be 1 to 1000")
                   : absl::OkStatus(),
      [this, response, conversation_id, after,
       limit](const storage::MemberRecord&) -> absl::Status {
        absl::StatusOr<std::vector<storage::MemberRecord>> page =
            deps_.reader->ListMembers(conversation_id, after, limit + 1);
        if (!page.ok()) return HideMembership(page.status());
        response->set_has_more(page->size() > limit);
        if (page->size() > limit) page->resize(limit);
        for (const storage::MemberRecord& member : *page) {
          absl::StatusOr<uint64_t> read_seq =
              deps_.read_markers->GetReadSeq(member.user_id, conversation_id);
          if (!read_seq.ok()) return read_seq.status();
          *response->add_members() = MemberProto(member, *read_seq);
        }
        return absl::OkStatus();
      });
  return reactor;
}

grpc::ServerUnaryReactor* MessageServiceImpl::GetConversation(
    grpc::CallbackServerContext* context,
    const v1::GetConversationRequest* request,
    v1::GetConversationResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const uint64_t conversation_id = request->conversation_id();
  RunMemberRead(
      *context, reactor, conversation_id, absl::OkStatus(),
      [this, response,
       conversation_id](const storage::MemberRecord& me) -> absl::Status {
        absl::StatusOr<storage::ConversationRecord> conversation =
            deps_.reader->GetConversation(conversation_id);
        if (!conversation.ok()) return HideMembership(conversation.status());
        absl::StatusOr<uint64_t> read_seq =
            deps_.read_markers->GetReadSeq(me.user_id, conversation_id);
        if (!read_seq.ok()) return read_seq.status();
        *response->mutable_conversation() =
            ConversationProto(*conversation, me.user_id);
        *response->mutable_me() = MemberProto(me, *read_seq);
        return absl::OkStatus();
      });
  return reactor;
}

}  // namespace im::message
