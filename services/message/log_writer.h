#ifndef IM_SERVICES_MESSAGE_LOG_WRITER_H_
#define IM_SERVICES_MESSAGE_LOG_WRITER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "google/protobuf/timestamp.pb.h"
#include "services/message/membership_cache.h"
#include "services/message/message_metrics.h"
#include "storage/conversation_store.h"

namespace im::message {

// Receives committed entries, per conversation in seq order.
class EntryPublisher {
 public:
  virtual ~EntryPublisher() = default;
  // `members`: the active members after the entry. `also_to`: users who
  // must see it although they are not members any more (the subject of a
  // REMOVED or LEFT event).
  virtual void PublishEntry(storage::Entry entry,
                            const ConversationMembers& members,
                            absl::Span<const uint64_t> also_to) = 0;
};

// What a durable send produced.
struct SendResult {
  uint64_t seq = 0;
  ::google::protobuf::Timestamp sent_at;
  // The (sender, client_msg_id) was stored before this request: seq and
  // sent_at are the original ones.
  bool duplicate = false;
};

// Writes every seq-allocating change of the conversation log. Sharded by
// conversation id: each shard has a thread of its own that drains its queue
// into batches and stores each batch with one ConversationLog::AppendMessages
// call (one transaction, group commit). Retryable batch failures (UNAVAILABLE,
// ABORTED) are retried with backoff, then the batch's requests fail with
// UNAVAILABLE; a retry with the same client_msg_id is then safe because the
// log deduplicates. After a commit the shard completes each request and then
// publishes the new entries; a shard owns its conversations, so publish order
// is seq order. Member changes of existing conversations run on the same
// shard, in queue order with the messages. Callbacks run on shard threads and
// must not block. Thread-safe.
class LogWriter {
 public:
  struct Options {
    int shards = 4;
    // Requests per AppendMessages call at most.
    size_t max_batch = 512;
    // Queued requests per shard beyond which Append refuses.
    size_t max_queued_per_shard = 20000;
    // Tries per batch, the first included.
    int max_attempts = 5;
    absl::Duration first_backoff = absl::Milliseconds(5);
    absl::Duration max_backoff = absl::Milliseconds(500);
    // Batch sizes and send-to-commit latency; null =
    // MessageMetrics::Unexported().
    MessageMetrics* metrics = nullptr;
  };
  using Clock = std::function<absl::Time()>;
  using SendDone = absl::AnyInvocable<void(absl::StatusOr<SendResult>) &&>;
  // Runs one member change against the log; `client_msg_id` is the same on
  // every retry so a change that committed although the call failed is not
  // applied twice.
  using MemberChangeOp = absl::AnyInvocable<absl::StatusOr<storage::MemberChange>(
      storage::ConversationLog& log, const std::string& client_msg_id,
      absl::Time now)>;
  using MemberChangeDone =
      absl::AnyInvocable<void(absl::StatusOr<storage::MemberChange>) &&>;

  // INVALID_ARGUMENT for shards < 1 or max_batch < 1.
  static absl::StatusOr<std::unique_ptr<LogWriter>> Create(
      const Options& options, storage::ConversationLog* log,
      MembershipCache* members, EntryPublisher* publisher,
      Clock clock = absl::Now);

  // Stops (see Stop).
  ~LogWriter();

  // Queues a message. `done` is called exactly once: from a shard thread
  // with the result after the commit, the request's own error (NOT_FOUND,
  // INVALID_ARGUMENT) or UNAVAILABLE; or at once with RESOURCE_EXHAUSTED
  // when the shard's queue is full or UNAVAILABLE after Stop began.
  void Append(storage::AppendRequest request, SendDone done);

  // Queues a member change of an existing conversation on its shard; `done`
  // as for Append, called after the change's entry was published.
  void ChangeMembers(uint64_t conversation_id, MemberChangeOp op,
                     MemberChangeDone done);

  // Publishes the first entry of a conversation created outside the shards
  // (CreateGroup, GetOrCreateDirect) from its shard, so it goes out before
  // anything later in that conversation. `done` runs once: after
  // publishing, or at once with the reason it was refused.
  void PublishCreated(storage::MemberChange change,
                      absl::AnyInvocable<void(absl::Status) &&> done);

  // Refuses new requests, commits and completes everything queued, then
  // joins the shard threads. Idempotent.
  void Stop();

  // Requests waiting in all shards (for tests and metrics).
  size_t queued() const;

  // Totals since start (metrics, benchmarks).
  struct Stats {
    uint64_t batches = 0;        // AppendMessages transactions committed
    uint64_t appended = 0;       // requests in them
    uint64_t retries = 0;        // failed attempts that were retried
    uint64_t commit_micros = 0;  // time spent in AppendMessages
  };
  Stats stats() const;

 private:
  struct AppendItem {
    storage::AppendRequest request;
    SendDone done;
    absl::Time enqueued_at;
  };
  struct MemberChangeItem {
    uint64_t conversation_id;
    MemberChangeOp op;
    MemberChangeDone done;
  };
  struct CreatedItem {
    storage::MemberChange change;
    absl::AnyInvocable<void(absl::Status) &&> done;
  };
  using Item = std::variant<AppendItem, MemberChangeItem, CreatedItem>;

  struct Shard {
    absl::Mutex mu;
    std::deque<Item> queue ABSL_GUARDED_BY(mu);
    bool stopping ABSL_GUARDED_BY(mu) = false;
    std::thread thread;
    // Shard thread only: the time of the previous commit, so every commit
    // of the shard has a distinct microsecond.
    absl::Time last_commit_time = absl::InfinitePast();
  };

  LogWriter(const Options& options, storage::ConversationLog* log,
            MembershipCache* members, EntryPublisher* publisher, Clock clock);

  Shard& ShardOf(uint64_t conversation_id);
  // Moves `item` into the queue; leaves it alone when refusing.
  absl::Status Enqueue(uint64_t conversation_id, Item& item);
  void RunShard(Shard& shard);
  absl::Time NextCommitTime(Shard& shard);
  void CommitAppends(Shard& shard, std::vector<AppendItem> items);
  void RunMemberChange(Shard& shard, MemberChangeItem item);
  // Publishes one entry to the conversation's members and `also_to`.
  void Publish(storage::Entry entry, absl::Span<const uint64_t> also_to);
  // Calls `attempt` until it succeeds, fails for good, or the attempts run
  // out; sleeps with backoff in between.
  template <typename T>
  absl::StatusOr<T> WithRetries(const std::function<absl::StatusOr<T>()>& attempt);

  const Options options_;
  MessageMetrics& metrics_;
  storage::ConversationLog* const log_;
  MembershipCache* const members_;
  EntryPublisher* const publisher_;
  const Clock clock_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> appended_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> commit_micros_{0};
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_LOG_WRITER_H_
