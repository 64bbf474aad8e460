#include "clients/cpp/chat_session.h"

#include <algorithm>
#include <utility>

#include "clients/cpp/client_msg_id.h"
#include "clients/cpp/unary_call.h"
#include "services/common/authenticator.h"
#include "services/common/proto_time.h"
#include "services/common/status.h"

namespace im::client {

namespace v1 = ::im::message::v1;
namespace history_v1 = ::im::history::v1;

const char* ChatStateName(ChatState state) {
  switch (state) {
    case ChatState::kStopped:
      return "stopped";
    case ChatState::kConnecting:
      return "connecting";
    case ChatState::kLive:
      return "live";
    case ChatState::kDisconnected:
      return "disconnected";
    case ChatState::kSessionLost:
      return "session-lost";
  }
  return "unknown";
}

// The gRPC side of one Chat stream. Owned by gRPC's callback machinery
// until OnDone, where it deletes itself; the session's hold (AddHold) keeps
// OnDone from running while the session may still start writes.
class ChatSession::Stream final
    : public grpc::ClientBidiReactor<v1::ClientFrame, v1::ServerFrame> {
 public:
  explicit Stream(ChatSession* session) : session_(session) {}

  void OnReadDone(bool ok) override { session_->OnReadDone(this, ok); }
  void OnWriteDone(bool ok) override { session_->OnWriteDone(this, ok); }
  void OnDone(const grpc::Status& status) override {
    session_->OnStreamDone(this, status);
    delete this;
  }

  grpc::ClientContext context;
  // Filled by the read in flight; used only in OnReadDone.
  v1::ServerFrame incoming;
  // The write in flight.
  v1::ClientFrame outgoing;

 private:
  ChatSession* const session_;
};

namespace {

absl::Status StatusFromErrorFrame(const v1::Error& error) {
  const int code = error.code();
  const absl::StatusCode status_code =
      code > 0 && code <= 16 ? static_cast<absl::StatusCode>(code)
                             : absl::StatusCode::kUnknown;
  return absl::Status(status_code, error.message());
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChatSession>> ChatSession::Create(
    const Options& options, Dependencies deps, EventCallback callback) {
  if (deps.message_channel == nullptr || deps.history_channel == nullptr ||
      deps.tokens == nullptr || deps.runtime == nullptr) {
    return absl::InvalidArgumentError(
        "ChatSession needs message and history channels, a token source and "
        "a runtime");
  }
  if (options.history_page < 1 || options.history_page > 200) {
    return absl::InvalidArgumentError("history_page must be 1-200");
  }
  if (options.max_pending_sends < 1 || options.max_undelivered_events < 1) {
    return absl::InvalidArgumentError(
        "max_pending_sends and max_undelivered_events must be positive");
  }
  return std::unique_ptr<ChatSession>(
      new ChatSession(options, std::move(deps), std::move(callback)));
}

ChatSession::ChatSession(const Options& options, Dependencies deps,
                         EventCallback callback)
    : options_(options),
      deps_(std::move(deps)),
      callback_(std::move(callback)),
      message_stub_(v1::MessageService::NewStub(deps_.message_channel)),
      history_stub_(history_v1::HistoryService::NewStub(deps_.history_channel)),
      sequencer_(EntrySequencer::Options{options.max_held_per_conversation}),
      reconnect_backoff_(options.reconnect_backoff),
      send_backoff_(options.send_retry_backoff) {
  absl::MutexLock lock(&mu_);
  sequencer_.Restore(options.initial_cursors);
}

ChatSession::~ChatSession() { Stop(); }

void ChatSession::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) return;
    started_ = true;
    OpenStreamLocked();
  }
  Dispatch();
}

void ChatSession::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      if (reconnect_timer_ != 0 &&
          deps_.runtime->timers().Cancel(reconnect_timer_)) {
        EndTaskLocked();
      }
      reconnect_timer_ = 0;
      for (auto& [order, send] : pending_) {
        if (send.retry_timer != 0 &&
            deps_.runtime->timers().Cancel(send.retry_timer)) {
          EndTaskLocked();
        }
        send.retry_timer = 0;
      }
    }
  }
  CancelStream();
  absl::MutexLock lock(&mu_);
  while (stream_ != nullptr || tasks_ > 0 || dispatching_) changed_.Wait(&mu_);
  state_ = ChatState::kStopped;
}

void ChatSession::DropStream() { CancelStream(); }

void ChatSession::CancelStream() {
  Stream* stream;
  {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr) return;
    stream = stream_;
    ++cancelling_;
    stream_closing_ = true;
  }
  // Outside the lock; `cancelling_` keeps the hold, so the stream lives.
  stream->context.TryCancel();
  absl::MutexLock lock(&mu_);
  --cancelling_;
  ReleaseHoldIfIdleLocked();
}

// ------------------------------------------------------------ stream ----

void ChatSession::OpenStreamLocked() {
  stream_token_ = deps_.tokens->AccessToken();
  auto* stream = new Stream(this);
  if (!stream_token_.empty()) {
    AttachBearerToken(&stream->context, stream_token_);
  }
  stream_ = stream;
  writes_.clear();
  write_in_flight_ = false;
  stream_closing_ = false;
  hold_released_ = false;
  reading_paused_ = false;
  in_flight_.clear();
  ++stats_.streams_opened;
  message_stub_->async()->Chat(&stream->context, stream);
  stream->AddHold();

  v1::ClientFrame hello_frame;
  v1::Hello* hello = hello_frame.mutable_hello();
  *hello->mutable_device() = options_.device;
  v1::Resume* resume = hello->mutable_resume();
  resume->set_replay_unlisted(options_.replay_unlisted);
  for (const auto& [conversation_id, seq] : sequencer_.Cursors()) {
    (*resume->mutable_cursors())[conversation_id] = seq;
  }
  writes_.push_back(std::move(hello_frame));
  for (const auto& [conversation_id, orders] : pending_by_conversation_) {
    WriteHeadSendLocked(conversation_id);
  }
  StartNextWriteLocked();
  stream->StartRead(&stream->incoming);
  stream->StartCall();
  SetStateLocked(ChatState::kConnecting);
}

void ChatSession::StartNextWriteLocked() {
  if (stream_ == nullptr || write_in_flight_ || stream_closing_ ||
      writes_.empty()) {
    return;
  }
  stream_->outgoing = std::move(writes_.front());
  writes_.pop_front();
  write_in_flight_ = true;
  stream_->StartWrite(&stream_->outgoing);
}

void ChatSession::ReleaseHoldIfIdleLocked() {
  if (stream_ == nullptr || hold_released_ || write_in_flight_ ||
      cancelling_ > 0) {
    return;
  }
  hold_released_ = true;
  stream_->RemoveHold();
}

void ChatSession::ResumeReadingLocked() {
  if (!reading_paused_ || stream_ == nullptr || stream_closing_) return;
  reading_paused_ = false;
  stream_->StartRead(&stream_->incoming);
}

void ChatSession::OnWriteDone(Stream* stream, bool ok) {
  if (!ok) {
    // The stream cannot carry our frames any more. Its read side may stay
    // open (nothing ends it if the server never sends a status), so end it
    // here; OnDone follows and the session reconnects. Safe outside the
    // lock: OnDone cannot run before this reaction returns.
    stream->context.TryCancel();
  }
  absl::MutexLock lock(&mu_);
  if (stream != stream_) return;
  write_in_flight_ = false;
  if (!ok) stream_closing_ = true;
  if (stream_closing_) {
    ReleaseHoldIfIdleLocked();
  } else {
    StartNextWriteLocked();
  }
}

void ChatSession::OnReadDone(Stream* stream, bool ok) {
  {
    absl::MutexLock lock(&mu_);
    if (stream != stream_) return;
    if (!ok) {
      // The server ended the stream (or it broke): OnDone brings the status.
      stream_closing_ = true;
      ReleaseHoldIfIdleLocked();
    } else {
      HandleFrameLocked(stream->incoming);
      if (stream_closing_) {
        ReleaseHoldIfIdleLocked();
      } else if (outbox_.size() >= options_.max_undelivered_events) {
        // The application is behind: stop reading until it catches up
        // (the server may then end the stream as a slow consumer, and the
        // session resumes from its cursors).
        reading_paused_ = true;
      } else {
        stream->StartRead(&stream->incoming);
      }
    }
  }
  Dispatch();
}

void ChatSession::HandleFrameLocked(v1::ServerFrame& frame) {
  switch (frame.frame_case()) {
    case v1::ServerFrame::kEntry: {
      std::vector<v1::Entry> ready;
      std::optional<EntrySequencer::Gap> gap =
          sequencer_.OnEntry(std::move(*frame.mutable_entry()), &ready);
      EmitEntriesLocked(ready);
      if (gap.has_value()) StartFillLocked(*gap);
      break;
    }
    case v1::ServerFrame::kAck: {
      const v1::SendAck& ack = frame.ack();
      auto it = in_flight_.find(ack.request_id());
      if (it == in_flight_.end()) break;
      const uint64_t order = it->second;
      in_flight_.erase(it);
      auto send = pending_.find(order);
      if (send == pending_.end()) break;
      SendOutcome outcome;
      outcome.state = SendOutcome::State::kAcked;
      outcome.client_msg_id = send->second.client_msg_id;
      outcome.conversation_id = send->second.conversation_id;
      outcome.seq = ack.seq();
      outcome.sent_at = FromProtoTime(ack.sent_at());
      outcome.duplicate = ack.duplicate();
      outcome.attempts = send->second.attempts;
      ++stats_.sends_acked;
      if (ack.duplicate()) ++stats_.sends_acked_duplicate;
      FinishSendLocked(order, std::move(outcome));
      break;
    }
    case v1::ServerFrame::kError: {
      const v1::Error& error = frame.error();
      absl::Status status = StatusFromErrorFrame(error);
      auto it = in_flight_.find(error.request_id());
      if (it == in_flight_.end()) {
        outbox_.push_back(RequestError{error.request_id(),
                                       error.conversation_id(),
                                       std::move(status)});
        break;
      }
      const uint64_t order = it->second;
      in_flight_.erase(it);
      auto send = pending_.find(order);
      if (send == pending_.end()) break;
      if (IsTransient(status)) {
        RetrySendLaterLocked(order, send->second);
        break;
      }
      SendOutcome outcome;
      outcome.state = SendOutcome::State::kFailed;
      outcome.client_msg_id = send->second.client_msg_id;
      outcome.conversation_id = send->second.conversation_id;
      outcome.status = std::move(status);
      outcome.attempts = send->second.attempts;
      ++stats_.sends_failed;
      FinishSendLocked(order, std::move(outcome));
      break;
    }
    case v1::ServerFrame::kReceipt:
      outbox_.push_back(std::move(*frame.mutable_receipt()));
      break;
    case v1::ServerFrame::kTyping:
      outbox_.push_back(std::move(*frame.mutable_typing()));
      break;
    case v1::ServerFrame::kReplayTruncated: {
      ++stats_.replay_truncations;
      const v1::ReplayTruncated& truncated = frame.replay_truncated();
      std::optional<EntrySequencer::Gap> gap = sequencer_.OnReplayTruncated(
          truncated.conversation_id(), truncated.from_seq());
      if (gap.has_value()) StartFillLocked(*gap);
      break;
    }
    case v1::ServerFrame::kReady:
      ++stats_.streams_ready;
      reconnect_backoff_.Reset();
      unauthenticated_since_ready_ = 0;
      SetStateLocked(ChatState::kLive);
      break;
    case v1::ServerFrame::FRAME_NOT_SET:
      break;
  }
}

void ChatSession::OnStreamDone(Stream* stream, const grpc::Status& grpc_status) {
  bool renew = false;
  {
    absl::MutexLock lock(&mu_);
    if (stream != stream_) return;
    // Counted as a task until the end, so Stop cannot finish (and the
    // session go away) while this still dispatches.
    BeginTaskLocked();
    stream_ = nullptr;
    writes_.clear();
    write_in_flight_ = false;
    reading_paused_ = false;
    in_flight_.clear();
    for (auto& [order, send] : pending_) send.request_id = 0;
    const absl::Status status = FromGrpcStatus(grpc_status);
    if (stopping_) {
      changed_.SignalAll();
    } else if (status.code() == absl::StatusCode::kUnauthenticated) {
      // Usually the access token expired under the stream (they end with
      // it). With a newer token at hand, come back at once; else renew.
      ++unauthenticated_since_ready_;
      if (unauthenticated_since_ready_ == 1 &&
          deps_.tokens->AccessToken() != stream_token_) {
        ScheduleReconnectLocked(absl::ZeroDuration(), status);
      } else {
        SetStateLocked(ChatState::kDisconnected, status);
        BeginTaskLocked();
        renew = true;
      }
    } else {
      ScheduleReconnectLocked(reconnect_backoff_.Next(), status);
    }
  }
  if (renew) {
    deps_.tokens->RenewAsync(
        [this](absl::Status status) { OnTokenRenewed(status); });
  }
  DispatchAndEndTask();
}

void ChatSession::OnTokenRenewed(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      if (status.ok()) {
        ScheduleReconnectLocked(unauthenticated_since_ready_ <= 1
                                    ? absl::ZeroDuration()
                                    : reconnect_backoff_.Next(),
                                absl::OkStatus());
      } else if (!IsTransient(status)) {
        lost_ = true;
        SetStateLocked(ChatState::kSessionLost, status);
      } else {
        ScheduleReconnectLocked(reconnect_backoff_.Next(), status);
      }
    }
  }
  DispatchAndEndTask();
}

void ChatSession::ScheduleReconnectLocked(absl::Duration delay,
                                          absl::Status status) {
  SetStateLocked(ChatState::kDisconnected, std::move(status), delay);
  BeginTaskLocked();
  reconnect_timer_ = deps_.runtime->timers().Schedule(
      absl::Now() + delay, [this] { OnReconnectTimer(); });
}

void ChatSession::OnReconnectTimer() {
  {
    absl::MutexLock lock(&mu_);
    reconnect_timer_ = 0;
    if (!stopping_ && !lost_ && stream_ == nullptr) OpenStreamLocked();
  }
  DispatchAndEndTask();
}

void ChatSession::SetStateLocked(ChatState state, absl::Status status,
                                 absl::Duration retry_in) {
  state_ = state;
  outbox_.push_back(ConnectionChange{state, std::move(status), retry_in});
  changed_.SignalAll();
}

// ------------------------------------------------------------- sends ----

absl::StatusOr<std::string> ChatSession::Send(uint64_t conversation_id,
                                              v1::Message message,
                                              std::string client_msg_id) {
  if (client_msg_id.empty()) client_msg_id = NewClientMsgId();
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::FailedPreconditionError("chat session stopped");
  if (lost_) {
    return absl::UnauthenticatedError("session lost; sign in again");
  }
  if (pending_.size() >= options_.max_pending_sends) {
    return absl::ResourceExhaustedError("too many sends waiting for an ack");
  }
  if (pending_by_id_.contains(client_msg_id) ||
      finished_.contains(client_msg_id)) {
    return absl::AlreadyExistsError("client_msg_id already used");
  }
  const uint64_t order = ++next_order_;
  PendingSend& send = pending_[order];
  send.client_msg_id = client_msg_id;
  send.conversation_id = conversation_id;
  send.message = std::move(message);
  pending_by_id_[client_msg_id] = order;
  pending_by_conversation_[conversation_id].insert(order);
  ++stats_.sends_submitted;
  WriteHeadSendLocked(conversation_id);
  return client_msg_id;
}

void ChatSession::WriteSendLocked(uint64_t order, PendingSend& send) {
  const uint64_t request_id = ++next_request_id_;
  send.request_id = request_id;
  if (send.attempts > 0) ++stats_.send_retries;
  ++send.attempts;
  in_flight_[request_id] = order;
  v1::ClientFrame frame;
  v1::SendFrame* frame_send = frame.mutable_send();
  frame_send->set_request_id(request_id);
  frame_send->set_conversation_id(send.conversation_id);
  frame_send->set_client_msg_id(send.client_msg_id);
  *frame_send->mutable_message() = send.message;
  writes_.push_back(std::move(frame));
  StartNextWriteLocked();
}

void ChatSession::WriteHeadSendLocked(uint64_t conversation_id) {
  if (stream_ == nullptr || stream_closing_) return;
  auto orders = pending_by_conversation_.find(conversation_id);
  if (orders == pending_by_conversation_.end() || orders->second.empty()) {
    return;
  }
  const uint64_t head = *orders->second.begin();
  PendingSend& send = pending_.at(head);
  if (send.request_id == 0 && send.retry_timer == 0) {
    WriteSendLocked(head, send);
  }
}

void ChatSession::FinishSendLocked(uint64_t order, SendOutcome outcome) {
  auto it = pending_.find(order);
  if (it == pending_.end()) return;
  if (it->second.retry_timer != 0 &&
      deps_.runtime->timers().Cancel(it->second.retry_timer)) {
    EndTaskLocked();
  }
  const uint64_t conversation_id = it->second.conversation_id;
  pending_by_id_.erase(it->second.client_msg_id);
  pending_.erase(it);
  auto orders = pending_by_conversation_.find(conversation_id);
  orders->second.erase(order);
  if (orders->second.empty()) {
    pending_by_conversation_.erase(orders);
  } else {
    WriteHeadSendLocked(conversation_id);
  }
  finished_order_.push_back(outcome.client_msg_id);
  finished_[outcome.client_msg_id] = outcome;
  while (finished_order_.size() > options_.max_finished_sends) {
    finished_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
  outbox_.push_back(std::move(outcome));
}

void ChatSession::RetrySendLaterLocked(uint64_t order, PendingSend& send) {
  send.request_id = 0;
  const absl::Duration delay = send_backoff_.DrawFor(send.refusals);
  ++send.refusals;
  BeginTaskLocked();
  send.retry_timer = deps_.runtime->timers().Schedule(
      absl::Now() + delay, [this, order] { OnSendRetryTimer(order); });
}

void ChatSession::OnSendRetryTimer(uint64_t order) {
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(order);
  if (it != pending_.end() && it->second.retry_timer != 0) {
    it->second.retry_timer = 0;
    if (!stopping_) WriteHeadSendLocked(it->second.conversation_id);
  }
  EndTaskLocked();
}

uint64_t ChatSession::WriteControlLocked(v1::ClientFrame frame) {
  const uint64_t request_id = ++next_request_id_;
  if (frame.has_read()) frame.mutable_read()->set_request_id(request_id);
  if (frame.has_typing()) frame.mutable_typing()->set_request_id(request_id);
  writes_.push_back(std::move(frame));
  StartNextWriteLocked();
  return request_id;
}

absl::StatusOr<uint64_t> ChatSession::MarkRead(uint64_t conversation_id,
                                               uint64_t seq) {
  absl::MutexLock lock(&mu_);
  if (stream_ == nullptr || stream_closing_) {
    return absl::FailedPreconditionError("no stream is open");
  }
  v1::ClientFrame frame;
  frame.mutable_read()->set_conversation_id(conversation_id);
  frame.mutable_read()->set_seq(seq);
  return WriteControlLocked(std::move(frame));
}

absl::StatusOr<uint64_t> ChatSession::SendTyping(uint64_t conversation_id) {
  absl::MutexLock lock(&mu_);
  if (stream_ == nullptr || stream_closing_) {
    return absl::FailedPreconditionError("no stream is open");
  }
  v1::ClientFrame frame;
  frame.mutable_typing()->set_conversation_id(conversation_id);
  return WriteControlLocked(std::move(frame));
}

std::optional<SendOutcome> ChatSession::SendState(
    const std::string& client_msg_id) const {
  absl::MutexLock lock(&mu_);
  if (auto it = pending_by_id_.find(client_msg_id); it != pending_by_id_.end()) {
    const PendingSend& send = pending_.at(it->second);
    SendOutcome outcome;
    outcome.client_msg_id = client_msg_id;
    outcome.conversation_id = send.conversation_id;
    outcome.attempts = send.attempts;
    return outcome;
  }
  if (auto it = finished_.find(client_msg_id); it != finished_.end()) {
    return it->second;
  }
  return std::nullopt;
}

std::vector<SendOutcome> ChatSession::PendingSends() const {
  absl::MutexLock lock(&mu_);
  std::vector<SendOutcome> sends;
  sends.reserve(pending_.size());
  for (const auto& [order, send] : pending_) {
    SendOutcome outcome;
    outcome.client_msg_id = send.client_msg_id;
    outcome.conversation_id = send.conversation_id;
    outcome.attempts = send.attempts;
    sends.push_back(std::move(outcome));
  }
  return sends;
}

// -------------------------------------------------------------- gaps ----

void ChatSession::StartFillLocked(const EntrySequencer::Gap& gap) {
  BeginTaskLocked();
  ScheduleFillLocked(gap, absl::ZeroDuration(), 0);
}

void ChatSession::ScheduleFillLocked(const EntrySequencer::Gap& gap,
                                     absl::Duration delay, int failures) {
  // The caller's task count moves to the fill. History reads block, so
  // they run on a worker; a delay goes through the timer thread first.
  auto submit = [this, gap, failures] {
    absl::Status submitted = deps_.runtime->workers().Submit(
        [this, gap, failures] { RunFill(gap, failures); });
    if (!submitted.ok()) {
      absl::MutexLock lock(&mu_);
      ScheduleFillLocked(gap, absl::Seconds(1), failures);
    }
  };
  if (delay <= absl::ZeroDuration()) {
    absl::Status submitted = deps_.runtime->workers().Submit(
        [this, gap, failures] { RunFill(gap, failures); });
    if (submitted.ok()) return;
    delay = absl::Seconds(1);
  }
  deps_.runtime->timers().Schedule(absl::Now() + delay, std::move(submit));
}

void ChatSession::RunFill(EntrySequencer::Gap gap, int failures) {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        EndTaskLocked();
        return;
      }
    }
    history_v1::GetHistoryRequest request;
    request.set_conversation_id(gap.conversation_id);
    request.set_anchor_seq(gap.after_seq);
    request.set_direction(history_v1::DIRECTION_AFTER);
    const uint64_t wanted =
        gap.up_to_seq > gap.after_seq ? gap.up_to_seq - gap.after_seq : 1;
    request.set_limit(static_cast<uint32_t>(
        std::min<uint64_t>(wanted, options_.history_page)));
    absl::StatusOr<history_v1::GetHistoryResponse> page =
        CallUnary(history_stub_.get(),
                  &history_v1::HistoryService::Stub::GetHistory, request,
                  deps_.tokens->AccessToken(), options_.rpc_timeout);
    std::optional<EntrySequencer::Gap> next;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        EndTaskLocked();
        return;
      }
      std::vector<v1::Entry> ready;
      if (page.ok()) {
        failures = 0;
        std::vector<v1::Entry> entries(page->entries().begin(),
                                       page->entries().end());
        next = sequencer_.OnHistoryPage(gap.conversation_id, entries,
                                        !page->has_more(), &ready);
      } else if (IsTransient(page.status()) ||
                 page.status().code() == absl::StatusCode::kUnauthenticated) {
        // Try again later; live entries of this conversation wait.
        ++stats_.history_failures;
        ScheduleFillLocked(gap, send_backoff_.DrawFor(failures), failures + 1);
        return;
      } else {
        // No longer visible to us (removed, or the conversation is gone).
        ++stats_.history_failures;
        next = sequencer_.AbandonGap(gap.conversation_id, &ready);
      }
      EmitEntriesLocked(ready);
    }
    if (!next.has_value()) {
      DispatchAndEndTask();
      return;
    }
    Dispatch();
    gap = *next;
  }
}

void ChatSession::EmitEntriesLocked(std::vector<v1::Entry>& entries) {
  for (v1::Entry& entry : entries) outbox_.push_back(std::move(entry));
}

// ---------------------------------------------------------- delivery ----

void ChatSession::Dispatch() {
  {
    absl::MutexLock lock(&mu_);
    if (dispatching_ || outbox_.empty()) return;
    dispatching_ = true;
  }
  for (;;) {
    std::deque<ChatEvent> batch;
    {
      absl::MutexLock lock(&mu_);
      if (outbox_.empty()) {
        dispatching_ = false;
        changed_.SignalAll();
        return;
      }
      batch.swap(outbox_);
      ResumeReadingLocked();
    }
    if (callback_) {
      for (ChatEvent& event : batch) callback_(std::move(event));
    }
  }
}

void ChatSession::DispatchAndEndTask() {
  Dispatch();
  absl::MutexLock lock(&mu_);
  EndTaskLocked();
}

void ChatSession::EndTaskLocked() {
  --tasks_;
  if (tasks_ == 0) changed_.SignalAll();
}

// --------------------------------------------------------- accessors ----

absl::flat_hash_map<uint64_t, uint64_t> ChatSession::Cursors() const {
  absl::MutexLock lock(&mu_);
  return sequencer_.Cursors();
}

ChatState ChatSession::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

bool ChatSession::WaitUntilLive(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (state_ != ChatState::kLive && !stopping_ && !lost_) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;
  }
  return state_ == ChatState::kLive;
}

ChatSession::Stats ChatSession::stats() const {
  absl::MutexLock lock(&mu_);
  Stats stats = stats_;
  const EntrySequencer::Stats& sequenced = sequencer_.stats();
  stats.entries_delivered = sequenced.delivered;
  stats.duplicates_dropped = sequenced.duplicates;
  stats.gaps = sequenced.gaps;
  stats.entries_from_history = sequenced.from_history;
  return stats;
}

}  // namespace im::client
