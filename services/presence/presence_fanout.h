#ifndef IM_SERVICES_PRESENCE_PRESENCE_FANOUT_H_
#define IM_SERVICES_PRESENCE_PRESENCE_FANOUT_H_

#include <grpcpp/support/status.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "im/presence/v1/presence.pb.h"
#include "services/presence/presence_lease_table.h"

namespace im::presence {

class PresenceFanout;

// The stream end of a subscription (the gRPC reactor; a recorder in tests).
// The subscription calls StartWrite with at most one write outstanding and
// Finish exactly once, never while a write is outstanding.
class PresenceStreamWriter {
 public:
  virtual ~PresenceStreamWriter() = default;
  // Starts one write; `batch` stays untouched until the stream's owner
  // reports PresenceSubscription::OnWriteDone.
  virtual void WriteBatch(const v1::PresenceBatch* batch) = 0;
  virtual void FinishStream(const grpc::Status& status) = 0;
};

// One Subscribe stream: which users it watches and may see, what is pending,
// what was sent. Shared by the stream's reactor and the fanout; the writer
// pointer is used only until Finish was handed to it.
class PresenceSubscription
    : public std::enable_shared_from_this<PresenceSubscription> {
 public:
  // `watched`: distinct ids in request order.
  PresenceSubscription(uint64_t viewer, uint64_t session_id,
                       std::vector<uint64_t> watched,
                       PresenceStreamWriter* writer);

  uint64_t viewer() const { return viewer_; }
  uint64_t session_id() const { return session_id_; }
  const std::vector<uint64_t>& watched() const { return watched_; }

  // From the stream's reactor.
  void OnWriteDone(bool ok);
  // Ends the stream with `status` once no write is outstanding; later calls
  // are ignored.
  void RequestFinish(const grpc::Status& status);

  bool finishing() const;
  absl::Time visibility_checked_at() const;

 private:
  friend class PresenceFanout;

  // Marks `user` changed; true if the subscription must be put on the
  // fanout's dirty list.
  bool MarkPending(uint64_t user);
  // Sets the visible users; returns those whose visibility changed.
  std::vector<uint64_t> SetVisible(absl::flat_hash_set<uint64_t> visible,
                                   absl::Time checked_at);
  // Writes the snapshot (first write). false if the stream already ended.
  void WriteSnapshot(const PresenceLeaseTable& table);
  // Writes pending changes if no write is outstanding; returns the number
  // of presences written.
  size_t Flush(const PresenceLeaseTable& table);
  // Adds the presences of `users` that differ from what was last sent.
  void AppendChangedLocked(const PresenceLeaseTable& table,
                           absl::Span<const uint64_t> users)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t viewer_;
  const uint64_t session_id_;
  const std::vector<uint64_t> watched_;
  PresenceStreamWriter* const writer_;
  PresenceFanout* fanout_ = nullptr;  // set once by PresenceFanout::Add

  mutable absl::Mutex mu_;
  absl::flat_hash_set<uint64_t> visible_ ABSL_GUARDED_BY(mu_);
  absl::Time visibility_checked_at_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> pending_ ABSL_GUARDED_BY(mu_);
  // Hash of the last presence sent per user: a change that reverts within
  // one window sends nothing.
  absl::flat_hash_map<uint64_t, size_t> sent_ ABSL_GUARDED_BY(mu_);
  v1::PresenceBatch batch_ ABSL_GUARDED_BY(mu_);  // the write in flight
  bool started_ ABSL_GUARDED_BY(mu_) = false;     // snapshot begun
  bool dirty_listed_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

// Routes presence changes to subscriptions and writes them in batches: a
// changed user is marked pending on every subscription that may see it,
// and every `window` each subscription with pending users and no write in
// flight gets one PresenceBatch with their current presence. A subscriber
// that cannot keep up only accumulates pending ids (at most its watched
// set), never batches. Thread-safe; owns one flusher thread.
class PresenceFanout {
 public:
  struct Options {
    absl::Duration window = absl::Milliseconds(100);
  };

  // `table` must outlive the fanout.
  PresenceFanout(const Options& options, const PresenceLeaseTable* table);
  // Stops the flusher; subscriptions should be finished first (FinishAll).
  ~PresenceFanout();

  PresenceFanout(const PresenceFanout&) = delete;
  PresenceFanout& operator=(const PresenceFanout&) = delete;

  // Registers `subscription` with the users it may see and writes its
  // snapshot. A subscription that is already finishing is not kept; after
  // FinishAll every new one is finished with UNAVAILABLE.
  void Add(std::shared_ptr<PresenceSubscription> subscription,
           absl::flat_hash_set<uint64_t> visible, absl::Time checked_at);
  // Forgets it (idempotent). Called from the reactor's OnDone.
  void Remove(PresenceSubscription* subscription);
  // Replaces what the subscription may see (periodic visibility refresh);
  // users that became visible or invisible are sent in the next batch.
  void UpdateVisible(const std::shared_ptr<PresenceSubscription>& subscription,
                     absl::flat_hash_set<uint64_t> visible,
                     absl::Time checked_at);

  // The table's change listener.
  void OnUsersChanged(absl::Span<const uint64_t> users);

  // Subscriptions whose visibility was last checked before `before`.
  std::vector<std::shared_ptr<PresenceSubscription>> CheckedBefore(
      absl::Time before) const;
  // Ends the streams of one session (revoked) or all (shutdown).
  void FinishSession(uint64_t session_id, const grpc::Status& status);
  void FinishAll(const grpc::Status& status);

  size_t subscriptions() const;
  size_t subscriptions_of(uint64_t viewer) const;
  // Presences sent in change batches (snapshots not counted), and batches.
  uint64_t updates_sent() const { return updates_sent_.load(); }
  uint64_t batches_sent() const { return batches_sent_.load(); }

 private:
  friend class PresenceSubscription;

  void Relist(std::shared_ptr<PresenceSubscription> subscription);
  void Run();

  const Options options_;
  const PresenceLeaseTable* const table_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<PresenceSubscription*,
                      std::shared_ptr<PresenceSubscription>>
      subscriptions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, absl::flat_hash_set<PresenceSubscription*>>
      watchers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, size_t> per_viewer_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<PresenceSubscription>> dirty_
      ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // FinishAll ran

  std::atomic<uint64_t> updates_sent_{0};
  std::atomic<uint64_t> batches_sent_{0};
  std::thread flusher_;
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_PRESENCE_FANOUT_H_
