#ifndef IM_CLIENTS_CPP_CHAT_SESSION_H_
#define IM_CLIENTS_CPP_CHAT_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/cpp/backoff.h"
#include "clients/cpp/chat_events.h"
#include "clients/cpp/client_runtime.h"
#include "clients/cpp/entry_sequencer.h"
#include "clients/cpp/session_tokens.h"
#include "im/history/v1/history.grpc.pb.h"
#include "im/message/v1/message.grpc.pb.h"

namespace im::client {

// One device's live Chat stream, kept open: reconnects with exponential
// backoff (full jitter) when the stream ends, resumes from the cursors it
// holds (Hello with replay_unlisted, so conversations added while offline
// appear), reads ranges the server did not replay (ReplayTruncated, or any
// gap) from history, and passes entries on exactly once and in seq order
// per conversation (see EntrySequencer). Sends carry a client_msg_id and
// stay pending until acked or refused with a non-retryable code; after a
// reconnect, or a transient per-request error, they are sent again with the
// same client_msg_id, which the server stores once. One send per
// conversation is on the wire at a time, so a conversation's sends are
// stored in the order Send was called, even when one of them is refused
// for a while (a rate limit, the database away) and retried.
//
// Threading: events go to the callback given at Create, one at a time and
// in order (never concurrently), on gRPC's callback threads or the
// runtime's threads. The callback must not block for long (the stream is
// not read while events wait: more than max_undelivered_events waiting
// pauses reading) and must not call Stop or destroy the session; it may
// call Send, MarkRead and the accessors. Everything else is thread-safe.
class ChatSession {
 public:
  using EventCallback = std::function<void(ChatEvent)>;

  struct Options {
    // Reported to presence.
    ::im::message::v1::DeviceInfo device;
    // Cursors saved by an earlier run (conversation -> last seq held).
    absl::flat_hash_map<uint64_t, uint64_t> initial_cursors;
    // Replay conversations without a cursor from where the user joined
    // them. False: such conversations start live.
    bool replay_unlisted = true;
    ExponentialBackoff::Options reconnect_backoff = {
        absl::Milliseconds(200), absl::Seconds(10), 2.0};
    // Delay of a send refused with a transient code on a live stream
    // (RESOURCE_EXHAUSTED rate limit, UNAVAILABLE, ...), per send.
    ExponentialBackoff::Options send_retry_backoff = {
        absl::Milliseconds(100), absl::Seconds(5), 2.0};
    // Sends waiting for their ack; Send answers RESOURCE_EXHAUSTED beyond.
    size_t max_pending_sends = 100000;
    // Outcomes remembered for SendState after the send finished (oldest
    // forgotten first).
    size_t max_finished_sends = 10000;
    // Events waiting for the callback before the stream is no longer read.
    size_t max_undelivered_events = 4096;
    size_t max_held_per_conversation = 4096;
    // Entries per history read while filling a gap (1-200).
    uint32_t history_page = 200;
    // Deadline of each history read.
    absl::Duration rpc_timeout = absl::Seconds(10);
  };

  struct Dependencies {
    std::shared_ptr<grpc::Channel> message_channel;
    // For gap fills (GetHistory).
    std::shared_ptr<grpc::Channel> history_channel;
    // Must outlive the session.
    AccessTokenSource* tokens = nullptr;
    std::shared_ptr<ClientRuntime> runtime;
  };

  struct Stats {
    uint64_t streams_opened = 0;
    uint64_t streams_ready = 0;
    uint64_t entries_delivered = 0;
    uint64_t duplicates_dropped = 0;
    uint64_t gaps = 0;
    uint64_t entries_from_history = 0;
    uint64_t replay_truncations = 0;
    uint64_t sends_submitted = 0;
    uint64_t sends_acked = 0;
    uint64_t sends_acked_duplicate = 0;
    uint64_t sends_failed = 0;
    // Writes of a send beyond its first.
    uint64_t send_retries = 0;
    uint64_t history_failures = 0;
  };

  // INVALID_ARGUMENT for missing dependencies or bad options. Does not
  // connect until Start.
  static absl::StatusOr<std::unique_ptr<ChatSession>> Create(
      const Options& options, Dependencies deps, EventCallback callback);
  // Stop()s.
  ~ChatSession();

  ChatSession(const ChatSession&) = delete;
  ChatSession& operator=(const ChatSession&) = delete;

  // Opens the stream (and keeps reopening it). Once.
  void Start();
  // Ends the stream and waits until no callback runs and no background
  // work refers to the session. Pending sends stay pending (their outcome
  // is unknown). Idempotent; not from inside the callback.
  void Stop();

  // Queues a message for `conversation_id`; returns its client_msg_id (a
  // new UUIDv4 unless given). The outcome arrives as a SendOutcome event
  // and through SendState. RESOURCE_EXHAUSTED when too many sends are
  // pending; ALREADY_EXISTS when `client_msg_id` is pending or finished here
  // already; FAILED_PRECONDITION after Stop; UNAUTHENTICATED once the
  // session is lost.
  absl::StatusOr<std::string> Send(uint64_t conversation_id,
                                   ::im::message::v1::Message message,
                                   std::string client_msg_id = "");
  // kPending, kAcked or kFailed; nullopt for ids this session does not know
  // (or has forgotten, see max_finished_sends).
  std::optional<SendOutcome> SendState(const std::string& client_msg_id) const;
  // Sends still waiting for an ack, oldest first.
  std::vector<SendOutcome> PendingSends() const;

  // Read marker / typing on the stream; a refusal comes back as a
  // RequestError event. FAILED_PRECONDITION when no stream is open.
  absl::StatusOr<uint64_t> MarkRead(uint64_t conversation_id, uint64_t seq);
  absl::StatusOr<uint64_t> SendTyping(uint64_t conversation_id);

  // conversation -> highest seq passed to the callback; save them to
  // resume a later run (Options::initial_cursors).
  absl::flat_hash_map<uint64_t, uint64_t> Cursors() const;
  ChatState state() const;
  // Waits until the stream is live (Ready received); false on timeout or
  // when the session stopped or was lost.
  bool WaitUntilLive(absl::Duration timeout) const;
  Stats stats() const;

  // Ends the current stream as if the connection broke (tests, and
  // applications that know the network changed); it reconnects as usual.
  void DropStream();

 private:
  class Stream;
  struct PendingSend {
    std::string client_msg_id;
    uint64_t conversation_id = 0;
    ::im::message::v1::Message message;
    // On the current stream; 0 when not written to it.
    uint64_t request_id = 0;
    int attempts = 0;
    // Transient refusals in a row (for the retry delay).
    int refusals = 0;
    // Waiting out a retry delay (not written on reconnect meanwhile).
    message::TimerQueue::TimerId retry_timer = 0;
  };

  ChatSession(const Options& options, Dependencies deps,
              EventCallback callback);

  // --- stream ---
  void OpenStreamLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartNextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseHoldIfIdleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResumeReadingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancels the open stream (outside the lock, keeping it alive meanwhile).
  void CancelStream() ABSL_LOCKS_EXCLUDED(mu_);
  // Reactions of the current stream.
  void OnReadDone(Stream* stream, bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  void OnWriteDone(Stream* stream, bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  void OnStreamDone(Stream* stream, const grpc::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);
  void HandleFrameLocked(::im::message::v1::ServerFrame& frame)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleReconnectLocked(absl::Duration delay, absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnReconnectTimer() ABSL_LOCKS_EXCLUDED(mu_);
  void OnTokenRenewed(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void SetStateLocked(ChatState state, absl::Status status = absl::OkStatus(),
                      absl::Duration retry_in = absl::ZeroDuration())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- sends ---
  void WriteSendLocked(uint64_t order, PendingSend& send)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the oldest pending send of `conversation_id` unless it is on
  // the wire or waiting out a retry delay, or there is no open stream.
  void WriteHeadSendLocked(uint64_t conversation_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishSendLocked(uint64_t order, SendOutcome outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RetrySendLaterLocked(uint64_t order, PendingSend& send)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnSendRetryTimer(uint64_t order) ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t WriteControlLocked(::im::message::v1::ClientFrame frame)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- gaps ---
  void StartFillLocked(const EntrySequencer::Gap& gap)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs RunFill on a worker after `delay`; the fill's task is counted.
  void ScheduleFillLocked(const EntrySequencer::Gap& gap, absl::Duration delay,
                          int failures) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunFill(EntrySequencer::Gap gap, int failures) ABSL_LOCKS_EXCLUDED(mu_);
  void EmitEntriesLocked(std::vector<::im::message::v1::Entry>& entries)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- delivery ---
  // Runs the callback for queued events unless another thread is at it.
  void Dispatch() ABSL_LOCKS_EXCLUDED(mu_);
  // The last thing a task does: dispatch, then let Stop go on.
  void DispatchAndEndTask() ABSL_LOCKS_EXCLUDED(mu_);
  void BeginTaskLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { ++tasks_; }
  void EndTaskLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const Dependencies deps_;
  const EventCallback callback_;
  const std::unique_ptr<::im::message::v1::MessageService::Stub> message_stub_;
  const std::unique_ptr<::im::history::v1::HistoryService::Stub> history_stub_;

  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;
  ChatState state_ ABSL_GUARDED_BY(mu_) = ChatState::kStopped;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  EntrySequencer sequencer_ ABSL_GUARDED_BY(mu_);
  ExponentialBackoff reconnect_backoff_ ABSL_GUARDED_BY(mu_);
  ExponentialBackoff send_backoff_ ABSL_GUARDED_BY(mu_);
  message::TimerQueue::TimerId reconnect_timer_ ABSL_GUARDED_BY(mu_) = 0;
  // Timer callbacks, worker tasks and token renewals still to run.
  int tasks_ ABSL_GUARDED_BY(mu_) = 0;

  // The open stream (at most one) and its write side. The Stream object
  // lives until its OnDone; the hold keeps OnDone away while writes may
  // still be started from outside reactions.
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string stream_token_ ABSL_GUARDED_BY(mu_);
  std::deque<::im::message::v1::ClientFrame> writes_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  // The stream is ending: write nothing more, release the hold when idle.
  bool stream_closing_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
  // Threads cancelling the stream outside the lock.
  int cancelling_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_paused_ ABSL_GUARDED_BY(mu_) = false;
  // Streams ended UNAUTHENTICATED since the last Ready.
  int unauthenticated_since_ready_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 0;
  // request id on the current stream -> send order.
  absl::flat_hash_map<uint64_t, uint64_t> in_flight_ ABSL_GUARDED_BY(mu_);

  // Sends by submission order (resent in this order).
  std::map<uint64_t, PendingSend> pending_ ABSL_GUARDED_BY(mu_);
  // Orders of the pending sends of each conversation; only the first is
  // written (see the class comment).
  absl::flat_hash_map<uint64_t, std::set<uint64_t>> pending_by_conversation_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> pending_by_id_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, SendOutcome> finished_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> finished_order_ ABSL_GUARDED_BY(mu_);

  // Events for the callback, in order.
  std::deque<ChatEvent> outbox_ ABSL_GUARDED_BY(mu_);
  bool dispatching_ ABSL_GUARDED_BY(mu_) = false;

  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_CHAT_SESSION_H_
