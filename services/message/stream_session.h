#ifndef IM_SERVICES_MESSAGE_STREAM_SESSION_H_
#define IM_SERVICES_MESSAGE_STREAM_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "im/message/v1/message.pb.h"
#include "services/common/worker_pool.h"
#include "services/message/message_metrics.h"
#include "services/message/shared_frame.h"
#include "storage/conversation_store.h"

namespace im::message {

// The transport end of a session (a Chat or Subscribe reactor, or a Poll
// collector). Thread contract: the session calls StartWrite and Finish
// outside its lock; StartWrite only when the previous write completed
// (OnWriteDone), Finish exactly once after the last write completed, and
// nothing after Finish (so the transport may delete itself once finished).
// OnFramesQueued is called with the session's lock held: it must not block
// or call back into the session.
class SessionTransport {
 public:
  virtual ~SessionTransport() = default;
  // Writes one frame; `frame` stays alive until the transport calls
  // StreamSession::OnWriteDone.
  virtual void StartWrite(FramePtr frame) = 0;
  // Ends the stream with `status`.
  virtual void Finish(const absl::Status& status) = 0;
  // Hold mode only: a frame was queued, or the initial replay finished.
  virtual void OnFramesQueued() {}
};

// One live stream of one device, independent of the transport: Chat,
// Subscribe and Poll share it. Delivers each conversation's entries in seq
// order exactly once per stream:
// - Keeps per conversation the highest seq handed to the outbound queue.
//   A live entry at or below it is a duplicate and dropped; the next one is
//   queued; one beyond it opens a gap that is read from the log on the
//   worker pool while later live entries wait (bounded; what does not fit is
//   read from the log too).
// - Start: the caller registers the session with the router first, then
//   Start loads the memberships and replays what lies beyond each cursor,
//   page by page and only while the outbound queue has room, so the switch
//   to live can neither skip nor repeat an entry. A Ready frame follows the
//   initial replays.
// - The outbound queue is bounded by frames and bytes. A frame that does not
//   fit ends the stream with RESOURCE_EXHAUSTED once the write in flight
//   completes (hold mode: it is left for the next poll instead).
// Thread-safe; owned by shared_ptr (the router, the transport and pending
// log reads hold references).
class StreamSession : public std::enable_shared_from_this<StreamSession> {
 public:
  struct Options {
    // Outbound queue bounds, the frame being written included.
    size_t max_queued_frames = 1024;
    size_t max_queued_bytes = 4 << 20;
    // Entries per log read.
    uint32_t replay_page_size = 200;
    // A cursor further behind than this gets ReplayTruncated and a replay
    // of the newest max_replay_entries only.
    uint64_t max_replay_entries = 1000;
    // Live entries held back while a gap is read from the log.
    size_t max_held_live_entries = 1024;
    // Poll: frames stay queued until TakeFrames; a frame that does not fit
    // is left for the next poll; no Ready frame.
    bool hold_frames = false;
    // Deliveries and overflow cuts; null = MessageMetrics::Unexported().
    MessageMetrics* metrics = nullptr;
  };
  struct Identity {
    uint64_t stream_id = 0;
    uint64_t user_id = 0;
    uint64_t auth_session_id = 0;
  };

  StreamSession(const Options& options, const Identity& identity,
                storage::ConversationReader* reader, WorkerPool* pool,
                SessionTransport* transport);

  const Identity& identity() const { return identity_; }
  uint64_t user_id() const { return identity_.user_id; }

  // Loads the user's memberships and replays beyond `resume` on the worker
  // pool, then goes live. Call once, after registering with the router.
  void Start(const ::im::message::v1::Resume& resume);

  // From the router: a committed entry (a frame holding an Entry).
  void OnEntry(const FramePtr& frame);
  // From the router: a receipt or typing frame; delivered only once live.
  void OnEphemeral(const FramePtr& frame);
  // What the log held for one of the user's conversations when read, for
  // when live entries may have been missed (another node's notification
  // lost or sent to an outdated member list): entries up to `last_seq`
  // exist. `member`, when given, is the user's membership row as read with
  // it: a conversation joined since the stream started is then delivered
  // from its joined_seq, and one the user left up to its left_seq.
  // Whatever lies beyond what the stream delivered is read from the log.
  void OnLogPosition(uint64_t conversation_id, uint64_t last_seq,
                     const storage::MemberRecord* member);

  // This stream's own answers (SendAck, Error); never dropped, but they
  // count against the bound like any frame.
  void EnqueueReply(FramePtr frame);

  // Requests of this stream that will end in a reply; CloseWhenIdle waits
  // for them.
  void BeginRequest();
  void EndRequest();

  // From the transport.
  void OnWriteDone(bool ok);

  // Ends the stream with `status` once the write in flight completes;
  // queued frames are dropped. Later calls are ignored.
  void Close(const absl::Status& status);
  // Ends the stream with `status` once every request has its reply and
  // every queued frame is written (drain, client half-close). Stops taking
  // new entries. Hold mode: the same as Close.
  void CloseWhenIdle(const absl::Status& status);
  // The transport is gone (its OnDone ran): never call it again.
  void Detach();

  // Hold mode: what a poll answers with.
  struct Collected {
    // Frames queued so far, in order.
    std::vector<FramePtr> frames;
    // Per conversation the seq the stream has reached (live-only
    // conversations included, at their seq when the session started).
    absl::flat_hash_map<uint64_t, uint64_t> cursors;
    // Entries beyond the cursors are known to exist.
    bool more = false;
  };
  // Hold mode: takes what was collected and closes the session with
  // `status`, atomically; the session's own status if it had ended already
  // (its frames are gone then).
  absl::StatusOr<Collected> CollectAndClose(const absl::Status& status);

  // True once the initial replay finished, or (hold mode) the queue is full.
  bool ready() const;
  // Frames waiting in the queue.
  size_t queued_frames() const;
  bool closed() const;

  // The most bytes ever queued at once (tests assert the bound).
  size_t peak_queued_bytes() const;

 private:
  static constexpr uint64_t kNoEnd = std::numeric_limits<uint64_t>::max();

  struct Conversation {
    // `delivered` is meaningful: the stream's position is known.
    bool positioned = false;
    // Highest seq handed to the outbound queue.
    uint64_t delivered = 0;
    // Highest seq known to exist that this stream should get.
    uint64_t known_max = 0;
    // Lowest seq seen live before the position was known.
    uint64_t first_live = kNoEnd;
    // Last seq this stream may get (the user's removal or leave).
    uint64_t last_visible = kNoEnd;
    // The entry removing the user was delivered: nothing more.
    bool closed = false;
    // Waiting in fetch_queue_.
    bool queued_for_fetch = false;
    // Position from the member's joined_seq, looked up at the next fetch.
    bool needs_joined_seq = false;
    // Part of the initial replay, which is done at `initial_target`.
    bool initial = false;
    uint64_t initial_target = 0;
    // ReplayTruncated to send before the first replayed entry.
    std::optional<::im::message::v1::ReplayTruncated> truncated;
    // Live entries beyond delivered + 1, by seq.
    std::map<uint64_t, FramePtr> held;
  };

  // Result of a log read for one conversation.
  struct Fetched {
    uint64_t conversation_id = 0;
    absl::Status status;
    bool read_performed = false;
    std::optional<storage::MemberRecord> member;  // when joined_seq was needed
    std::vector<storage::Entry> entries;
  };

  // What to do with the transport once the lock is released.
  struct TransportAction {
    FramePtr write;
    std::optional<absl::Status> finish;
  };

  // kLoading until the memberships are read (live entries are held),
  // kReplaying until every initial replay is done, then kLive.
  enum class Phase { kLoading, kReplaying, kLive };

  void LoadMemberships(::im::message::v1::Resume resume);
  void OnMembershipsLoaded(
      const ::im::message::v1::Resume& resume,
      absl::StatusOr<std::vector<storage::MembershipView>> memberships);
  // Positions a conversation seen live but absent from the memberships
  // read at start (joined since): at its creation/addition entry when that
  // was seen, else from the member's joined_seq.
  void PositionJoinedLaterLocked(uint64_t conversation_id, Conversation& c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PositionFromMembershipLocked(const ::im::message::v1::Resume& resume,
                                    const storage::MembershipView& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnEntryLocked(const FramePtr& frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnLogPositionLocked(uint64_t conversation_id, uint64_t last_seq,
                           const storage::MemberRecord* member)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records that the replay cannot go on for lack of room.
  void NoRoomLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when `entry` adds this user (creation included).
  bool AddsMe(const storage::Entry& entry) const;
  // True when `entry` removes this user or is this user leaving.
  bool RemovesMe(const storage::Entry& entry) const;
  void HoldLocked(Conversation& c, uint64_t seq, const FramePtr& frame)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropHeldLocked(Conversation& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the entry in `frame` as c's next; false if it did not fit.
  bool DeliverLocked(Conversation& c, const FramePtr& frame)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a frame; false (and, unless holding, the stream closing) when it
  // does not fit.
  bool EnqueueLocked(FramePtr frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The entry frame in flight was written.
  void CountDeliveryLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether replay may queue `bytes` more and stay within its share.
  bool ReplayRoomLocked(size_t bytes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t ReplayFrameCapLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueFetchLocked(uint64_t conversation_id, Conversation& c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the conversations in fetch_queue_ forward: held entries first,
  // then a log read for the first that needs one.
  void ProcessFetchQueueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivers c's held entries that are next in order and fit.
  void DrainHeldLocked(Conversation& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishInitialLocked(Conversation& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeReadyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunFetch(uint64_t conversation_id, bool needs_joined_seq,
                uint64_t after_seq, uint64_t max_seq, uint32_t limit);
  void OnFetched(Fetched fetched);
  void CloseLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  TransportAction NextTransportActionLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Perform(TransportAction action);
  bool AcceptingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  MessageMetrics& metrics_;
  const Identity identity_;
  storage::ConversationReader* const reader_;
  WorkerPool* const pool_;
  SessionTransport* const transport_;

  mutable absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kLoading;
  absl::flat_hash_map<uint64_t, Conversation> conversations_
      ABSL_GUARDED_BY(mu_);
  // Live-only conversations not seen live yet: their last seq at start.
  absl::flat_hash_map<uint64_t, uint64_t> live_from_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> fetch_queue_ ABSL_GUARDED_BY(mu_);
  bool fetch_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  size_t initial_remaining_ ABSL_GUARDED_BY(mu_) = 0;
  size_t held_count_ ABSL_GUARDED_BY(mu_) = 0;

  std::deque<FramePtr> queue_ ABSL_GUARDED_BY(mu_);
  FramePtr in_flight_ ABSL_GUARDED_BY(mu_);
  size_t queued_frames_ ABSL_GUARDED_BY(mu_) = 0;  // in flight included
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;   // in flight included
  size_t peak_queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int open_requests_ ABSL_GUARDED_BY(mu_) = 0;

  // Set once the session is ending; `finish_status_` goes to the transport.
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool close_when_idle_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status idle_status_ ABSL_GUARDED_BY(mu_);
  // Hold mode: a frame did not fit, the poll should answer now.
  bool full_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status finish_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool detached_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_STREAM_SESSION_H_
