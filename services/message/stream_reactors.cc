#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "services/common/byte_buffer.h"
#include "services/common/status.h"
#include "services/common/text.h"
#include "services/message/message_service.h"
#include "services/message/rpc_helpers.h"

// The streaming RPCs of MessageServiceImpl: Chat, Subscribe and Poll.

namespace im::message {

// What Chat and Subscribe share: authentication, the session and its
// registration, token expiry, presence, and the SessionTransport side.
// Deleted in OnDone only.
template <typename Reactor>
class LiveStreamReactor : public Reactor, public SessionTransport {
 public:
  void StartWrite(FramePtr frame) override {
    // The session holds `frame` until OnWriteDone; gRPC takes references
    // to its slices. (A buffer hint for queued frames does not work here:
    // gRPC completes a hinted write only when a later write flushes it,
    // and the callback API allows one write at a time.)
    Reactor::StartWrite(&frame->wire());
  }
  void Finish(const absl::Status& status) override {
    Reactor::Finish(ToGrpcStatus(status));
  }
  void OnWriteDone(bool ok) override { session_->OnWriteDone(ok); }
  void OnCancel() override {
    if (session_ != nullptr) {
      session_->Close(absl::CancelledError("cancelled by the client"));
    }
  }
  void OnDone() override {
    if (session_ != nullptr) {
      session_->Detach();
      service_->router_->Unregister(session_.get());
      service_->stats_.streams_closed.fetch_add(1);
    }
    if (expiry_timer_ != 0) service_->timers_->Cancel(expiry_timer_);
    if (presence_open_) {
      service_->deps_.presence->OnStreamClosed(caller_.user_id,
                                               caller_.session_id);
    }
    delete this;
  }

 protected:
  LiveStreamReactor(MessageServiceImpl* service,
                    grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  // Authenticates and registers the session. On failure the stream is
  // finished and false returned.
  bool Open() {
    if (!service_->accepting()) {
      Reactor::Finish(ToGrpcStatus(ShuttingDown()));
      return false;
    }
    absl::StatusOr<Caller> caller = service_->AuthenticateUser(*context_);
    if (!caller.ok()) {
      Reactor::Finish(ToGrpcStatus(caller.status()));
      return false;
    }
    caller_ = *caller;
    StreamSession::Identity identity;
    identity.stream_id = service_->NextStreamId();
    identity.user_id = caller_.user_id;
    identity.auth_session_id = caller_.session_id;
    auto session = std::make_shared<StreamSession>(
        service_->options_.stream, identity, service_->deps_.reader,
        service_->pool_.get(), this);
    if (absl::Status registered = service_->router_->Register(session, true);
        !registered.ok()) {
      Reactor::Finish(ToGrpcStatus(registered));
      return false;
    }
    session_ = std::move(session);
    service_->stats_.streams_opened.fetch_add(1);
    // Checked again now that a revocation would find the session.
    if (service_->deps_.revocations != nullptr &&
        service_->deps_.revocations->IsRevoked(caller_.session_id)) {
      session_->Close(absl::UnauthenticatedError("session has been revoked"));
      return false;
    }
    if (!service_->accepting()) {
      session_->Close(ShuttingDown());
      return false;
    }
    std::weak_ptr<StreamSession> weak = session_;
    expiry_timer_ = service_->timers_->Schedule(caller_.expires_at, [weak] {
      if (auto session = weak.lock()) {
        session->Close(absl::UnauthenticatedError(
            "access token expired; reconnect with a fresh token"));
      }
    });
    return true;
  }

  // Reports the device and starts replay and live delivery.
  void StartSession(const v1::Resume& resume, const v1::DeviceInfo& device) {
    if (service_->deps_.presence != nullptr) {
      presence::DeviceStream stream;
      stream.user_id = caller_.user_id;
      stream.session_id = caller_.session_id;
      stream.device_kind = device.kind();
      stream.device_name = device.name();
      service_->deps_.presence->OnStreamOpened(stream);
      presence_open_ = true;
    }
    service_->StartSession(session_, resume);
  }

  MessageServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  Caller caller_;
  std::shared_ptr<StreamSession> session_;
  TimerQueue::TimerId expiry_timer_ = 0;
  bool presence_open_ = false;
};

// The Chat stream: reads client frames one at a time and answers each
// request with an ack or an Error frame on the same stream.
class ChatReactor final
    : public LiveStreamReactor<
          grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>> {
 public:
  ChatReactor(MessageServiceImpl* service, grpc::CallbackServerContext* context)
      : LiveStreamReactor(service, context) {
    if (Open()) StartRead(&read_buffer_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed (or the stream broke): answer what is
      // pending, then end.
      if (!started_) Begin(v1::Resume(), v1::DeviceInfo());
      session_->CloseWhenIdle(absl::OkStatus());
      return;
    }
    const std::string wire = ByteBufferToString(read_buffer_);
    read_buffer_.Clear();
    v1::ClientFrame frame;
    if (!frame.ParseFromString(wire)) {
      if (!started_) Begin(v1::Resume(), v1::DeviceInfo());
      const auto [request_id, conversation_id] = ScanRequestIds(wire);
      session_->EnqueueReply(ErrorFrame(
          request_id, conversation_id,
          absl::InvalidArgumentError("frame could not be parsed: string "
                                     "fields must be valid UTF-8")));
    } else {
      Handle(frame);
    }
    if (!session_->closed()) StartRead(&read_buffer_);
  }

 private:
  void Begin(const v1::Resume& resume, const v1::DeviceInfo& device) {
    started_ = true;
    StartSession(resume, device);
  }

  void Handle(const v1::ClientFrame& frame) {
    if (!started_) {
      if (frame.has_hello()) {
        v1::DeviceInfo device = frame.hello().device();
        absl::Status name_ok = ValidateLabel("device name", device.name(), 0, 64);
        if (!name_ok.ok()) device.clear_name();
        Begin(frame.hello().resume(), device);
        if (!name_ok.ok()) session_->EnqueueReply(ErrorFrame(0, 0, name_ok));
        return;
      }
      Begin(v1::Resume(), v1::DeviceInfo());
    }
    switch (frame.frame_case()) {
      case v1::ClientFrame::kHello:
        session_->EnqueueReply(ErrorFrame(
            0, 0,
            absl::FailedPreconditionError("hello must be the first frame")));
        return;
      case v1::ClientFrame::kSend:
        HandleSend(frame.send());
        return;
      case v1::ClientFrame::kRead:
        HandleRead(frame.read());
        return;
      case v1::ClientFrame::kTyping:
        HandleTyping(frame.typing());
        return;
      case v1::ClientFrame::FRAME_NOT_SET:
        session_->EnqueueReply(ErrorFrame(
            0, 0, absl::InvalidArgumentError("empty client frame")));
        return;
    }
  }

  void HandleSend(const v1::SendFrame& send) {
    std::shared_ptr<StreamSession> session = session_;
    session->BeginRequest();
    const uint64_t request_id = send.request_id();
    const uint64_t conversation_id = send.conversation_id();
    std::string client_msg_id = send.client_msg_id();
    service_->SubmitSend(
        caller_, conversation_id, client_msg_id, send.message(),
        [session, request_id, conversation_id,
         client_msg_id](absl::StatusOr<SendResult> result) {
          if (result.ok()) {
            v1::ServerFrame frame;
            *frame.mutable_ack() =
                MakeAck(request_id, conversation_id, client_msg_id, *result);
            session->EnqueueReply(MakeFrame(std::move(frame)));
          } else {
            session->EnqueueReply(
                ErrorFrame(request_id, conversation_id, result.status()));
          }
          session->EndRequest();
        });
  }

  void HandleRead(const v1::ReadFrame& read) {
    std::shared_ptr<StreamSession> session = session_;
    session->BeginRequest();
    const uint64_t request_id = read.request_id();
    const uint64_t conversation_id = read.conversation_id();
    service_->SubmitMarkRead(
        caller_, conversation_id, read.seq(),
        [session, request_id, conversation_id](absl::StatusOr<uint64_t> result) {
          if (!result.ok()) {
            session->EnqueueReply(
                ErrorFrame(request_id, conversation_id, result.status()));
          }
          session->EndRequest();
        });
  }

  void HandleTyping(const v1::TypingFrame& typing) {
    std::shared_ptr<StreamSession> session = session_;
    session->BeginRequest();
    const uint64_t request_id = typing.request_id();
    const uint64_t conversation_id = typing.conversation_id();
    service_->SubmitTyping(
        caller_, conversation_id,
        [session, request_id, conversation_id](absl::Status status) {
          if (!status.ok()) {
            session->EnqueueReply(
                ErrorFrame(request_id, conversation_id, status));
          }
          session->EndRequest();
        });
  }

  grpc::ByteBuffer read_buffer_;
  bool started_ = false;
};

// Subscribe: the Chat stream's server side only (grpc-web clients).
class SubscribeReactor final
    : public LiveStreamReactor<grpc::ServerWriteReactor<grpc::ByteBuffer>> {
 public:
  SubscribeReactor(MessageServiceImpl* service,
                   grpc::CallbackServerContext* context,
                   const grpc::ByteBuffer* request)
      : LiveStreamReactor(service, context) {
    v1::SubscribeRequest parsed;
    absl::Status status = ParseRequest(*request, &parsed);
    if (status.ok()) {
      status = ValidateLabel("device name", parsed.device().name(), 0, 64);
    }
    if (!status.ok()) {
      grpc::ServerWriteReactor<grpc::ByteBuffer>::Finish(ToGrpcStatus(status));
      return;
    }
    if (Open()) StartSession(parsed.resume(), parsed.device());
  }
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
MessageServiceImpl::Chat(grpc::CallbackServerContext* context) {
  return new ChatReactor(this, context);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* MessageServiceImpl::Subscribe(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return new SubscribeReactor(this, context, request);
}

// --------------------------------------------------------------- poll ----

// The collecting end of a poll's session. Shared with timer callbacks, so it
// outlives the reactor; `answered` makes exactly one of them finish the call.
class PollState final : public SessionTransport,
                        public std::enable_shared_from_this<PollState> {
 public:
  PollState(MessageServiceImpl* service, grpc::ServerUnaryReactor* reactor,
            v1::PollResponse* response, bool wait)
      : service_(service), reactor_(reactor), response_(response),
        wait_(wait) {}

  void set_session(std::shared_ptr<StreamSession> session) {
    session_ = std::move(session);
  }
  const std::shared_ptr<StreamSession>& session() const { return session_; }

  void StartWrite(FramePtr) override {}  // hold mode: never called
  void Finish(const absl::Status& status) override {
    // OK comes from our own CollectAndClose; anything else ended the
    // session (revoked, drained, cancelled).
    if (!status.ok()) AnswerWith(status);
  }
  void OnFramesQueued() override {
    // Called under the session's lock: hop to the timer thread.
    if (hop_scheduled_.exchange(true)) return;
    std::shared_ptr<PollState> self = shared_from_this();
    service_->timers_->Schedule(absl::Now(), [self] {
      self->hop_scheduled_.store(false);
      self->MaybeAnswer();
    });
  }

  void WaitExpired() {
    wait_expired_.store(true);
    MaybeAnswer();
  }

  void MaybeAnswer() {
    if (answered_.load() || !session_->ready()) return;
    if (session_->queued_frames() > 0 || !wait_ || wait_expired_.load()) {
      Answer();
    }
  }

  void AnswerWith(const absl::Status& status) {
    if (answered_.exchange(true)) return;
    FinishUnary(reactor_, status);
  }

 private:
  void Answer() {
    if (answered_.exchange(true)) return;
    absl::StatusOr<StreamSession::Collected> collected =
        session_->CollectAndClose(absl::OkStatus());
    if (!collected.ok()) {
      FinishUnary(reactor_, collected.status());
      return;
    }
    for (const FramePtr& frame : collected->frames) {
      *response_->add_frames() = frame->frame();
    }
    for (const auto& [id, seq] : collected->cursors) {
      (*response_->mutable_cursors())[id] = seq;
    }
    response_->set_more(collected->more);
    reactor_->Finish(grpc::Status::OK);
  }

  MessageServiceImpl* const service_;
  grpc::ServerUnaryReactor* const reactor_;  // valid until answered
  v1::PollResponse* const response_;
  const bool wait_;
  std::shared_ptr<StreamSession> session_;
  std::atomic<bool> answered_{false};
  std::atomic<bool> hop_scheduled_{false};
  std::atomic<bool> wait_expired_{false};
};

// Poll's reactor; deleted in OnDone.
class PollCall final : public grpc::ServerUnaryReactor {
 public:
  PollCall(MessageServiceImpl* service, grpc::CallbackServerContext* context,
           const v1::PollRequest* request, v1::PollResponse* response)
      : service_(service) {
    if (!service_->accepting()) {
      Finish(ToGrpcStatus(ShuttingDown()));
      return;
    }
    absl::StatusOr<Caller> caller = service_->AuthenticateUser(*context);
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *caller;
    const MessageServiceOptions& options = service_->options_;
    const absl::Duration wait =
        std::min(absl::Milliseconds(request->wait_ms()), options.poll_wait_cap);
    uint32_t max_entries = request->max_entries();
    if (max_entries == 0 || max_entries > options.poll_max_entries) {
      max_entries = options.poll_max_entries;
    }
    StreamSession::Options session_options = options.stream;
    session_options.hold_frames = true;
    session_options.max_queued_frames = max_entries;
    session_options.max_queued_bytes = options.poll_max_bytes;
    session_options.replay_page_size =
        std::min<uint32_t>(session_options.replay_page_size, max_entries);
    StreamSession::Identity identity;
    identity.stream_id = service_->NextStreamId();
    identity.user_id = caller_.user_id;
    identity.auth_session_id = caller_.session_id;
    state_ = std::make_shared<PollState>(service_, this, response,
                                         wait > absl::ZeroDuration());
    state_->set_session(std::make_shared<StreamSession>(
        session_options, identity, service_->deps_.reader,
        service_->pool_.get(), state_.get()));
    // Polls do not count against the stream limit.
    if (absl::Status registered =
            service_->router_->Register(state_->session(), false);
        !registered.ok()) {
      state_->AnswerWith(registered);
      return;
    }
    registered_ = true;
    if (service_->deps_.revocations != nullptr &&
        service_->deps_.revocations->IsRevoked(caller_.session_id)) {
      state_->session()->Close(
          absl::UnauthenticatedError("session has been revoked"));
      return;
    }
    if (service_->deps_.presence != nullptr) {
      presence::DeviceStream stream;
      stream.user_id = caller_.user_id;
      stream.session_id = caller_.session_id;
      service_->deps_.presence->OnStreamOpened(stream);
      presence_open_ = true;
    }
    std::shared_ptr<PollState> state = state_;
    deadline_timer_ = service_->timers_->Schedule(
        absl::Now() + wait, [state] { state->WaitExpired(); });
    service_->StartSession(state_->session(), request->resume());
  }

  void OnCancel() override {
    if (state_ != nullptr) {
      state_->session()->Close(absl::CancelledError("cancelled by the client"));
    }
  }

  void OnDone() override {
    if (state_ != nullptr) {
      state_->session()->Detach();
      if (registered_) service_->router_->Unregister(state_->session().get());
    }
    if (deadline_timer_ != 0) service_->timers_->Cancel(deadline_timer_);
    if (presence_open_) {
      service_->deps_.presence->OnStreamClosed(caller_.user_id,
                                               caller_.session_id);
    }
    delete this;
  }

 private:
  MessageServiceImpl* const service_;
  Caller caller_;
  std::shared_ptr<PollState> state_;
  bool registered_ = false;
  bool presence_open_ = false;
  TimerQueue::TimerId deadline_timer_ = 0;
};

grpc::ServerUnaryReactor* MessageServiceImpl::Poll(
    grpc::CallbackServerContext* context, const v1::PollRequest* request,
    v1::PollResponse* response) {
  return new PollCall(this, context, request, response);
}

}  // namespace im::message
