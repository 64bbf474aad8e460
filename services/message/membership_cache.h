#ifndef IM_SERVICES_MESSAGE_MEMBERSHIP_CACHE_H_
#define IM_SERVICES_MESSAGE_MEMBERSHIP_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/common/worker_pool.h"
#include "storage/conversation_store.h"

namespace im::message {

// The active members of one conversation at some point of its log. Immutable
// once published, so readers share it without locks.
struct ConversationMembers {
  uint64_t conversation_id = 0;
  ::im::message::v1::ConversationKind kind =
      ::im::message::v1::CONVERSATION_KIND_UNSPECIFIED;
  // Ascending: the fan-out set.
  std::vector<uint64_t> member_ids;
  // Active member -> the seq from which they see entries.
  absl::flat_hash_map<uint64_t, uint64_t> joined_seq;

  bool IsMember(uint64_t user_id) const { return joined_seq.contains(user_id); }
};
using MembersPtr = std::shared_ptr<const ConversationMembers>;

// conversation -> active members, bounded, for the send path's membership
// check and for fan-out. Misses load through ConversationReader on a worker
// pool. Member changes are applied by the conversation's writer shard after
// their commit and before they are published, so a cached set is never older
// than the entries being published. A load that raced with any member change
// is handed to its waiters but not cached (it may predate the change).
// Thread-safe.
class MembershipCache {
 public:
  struct Options {
    // Conversations kept; the least recently used half is dropped beyond it.
    size_t max_conversations = 100000;
    // ListMembers page size while loading.
    uint32_t load_page_size = 1000;
  };
  using Callback = absl::AnyInvocable<void(absl::StatusOr<MembersPtr>) &&>;

  MembershipCache(Options options, storage::ConversationReader* reader,
                  WorkerPool* pool);

  // The cached members, or null.
  MembersPtr Find(uint64_t conversation_id);

  // Calls `done` inline on a hit, else from a worker once loaded (concurrent
  // misses for one conversation share the load). NOT_FOUND "conversation not
  // found" when it does not exist; UNAVAILABLE when the pool refuses work or
  // the database fails.
  void Get(uint64_t conversation_id, Callback done);

  // For threads that may block (writer shards, workers): a hit or a load on
  // the calling thread.
  absl::StatusOr<MembersPtr> GetBlocking(uint64_t conversation_id);

  // Applies a committed member change (creation included). Called by the
  // conversation's writer shard before the change's entry is published.
  void ApplyChange(const storage::MemberChange& change);

  // Another node changed the members: the next lookup reads them afresh.
  void Invalidate(uint64_t conversation_id);
  // Changes made elsewhere may have been missed: forgets everything.
  void Clear();

 private:
  absl::StatusOr<MembersPtr> Load(uint64_t conversation_id);
  void InstallLocked(MembersPtr members) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  MembersPtr FindLocked(uint64_t conversation_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLoad(uint64_t conversation_id, uint64_t epoch_at_start,
                  absl::StatusOr<MembersPtr> result);

  const Options options_;
  storage::ConversationReader* const reader_;
  WorkerPool* const pool_;

  absl::Mutex mu_;
  // Two generations approximate LRU: hits in `older_` move to `recent_`;
  // when `recent_` is full it becomes `older_` and the old `older_` is
  // dropped.
  absl::flat_hash_map<uint64_t, MembersPtr> recent_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, MembersPtr> older_ ABSL_GUARDED_BY(mu_);
  // Waiters of in-flight loads.
  absl::flat_hash_map<uint64_t, std::vector<Callback>> loading_
      ABSL_GUARDED_BY(mu_);
  // Bumped by every ApplyChange, Invalidate and Clear; a load that sees it
  // move is not cached.
  uint64_t change_epoch_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_MEMBERSHIP_CACHE_H_
