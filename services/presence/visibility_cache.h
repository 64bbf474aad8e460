#ifndef IM_SERVICES_PRESENCE_VISIBILITY_CACHE_H_
#define IM_SERVICES_PRESENCE_VISIBILITY_CACHE_H_

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "storage/conversation_store.h"

namespace im::presence {

// Who may see whose presence: a viewer sees itself and the users it shares
// an active conversation with. Answers are cached per (viewer, user) for
// `ttl`, so a membership change shows within ttl. Thread-safe; Visible may
// block on the store, so it runs on worker threads only.
class VisibilityCache {
 public:
  struct Options {
    absl::Duration ttl = absl::Seconds(5);
    // Viewers remembered at most; beyond it expired answers are dropped
    // first, then everything.
    size_t max_viewers = 100000;
  };
  using Clock = std::function<absl::Time()>;

  VisibilityCache(const Options& options,
                  storage::ConversationReader* conversations, Clock clock);

  // The subset of `candidates` visible to `viewer`. Errors are the store's
  // (UNAVAILABLE when the database is unreachable).
  absl::StatusOr<absl::flat_hash_set<uint64_t>> Visible(
      uint64_t viewer, absl::Span<const uint64_t> candidates);

 private:
  struct Answer {
    bool visible = false;
    absl::Time expires_at;
  };
  using ViewerAnswers = absl::flat_hash_map<uint64_t, Answer>;

  void TrimLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  storage::ConversationReader* const conversations_;
  const Clock clock_;

  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, ViewerAnswers> answers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_VISIBILITY_CACHE_H_
