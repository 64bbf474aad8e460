#include "services/presence/visibility_cache.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace im::presence {
namespace {

constexpr size_t kMaxAnswersPerViewer = 10000;

}  // namespace

VisibilityCache::VisibilityCache(const Options& options,
                                 storage::ConversationReader* conversations,
                                 Clock clock)
    : options_(options),
      conversations_(conversations),
      clock_(std::move(clock)) {}

absl::StatusOr<absl::flat_hash_set<uint64_t>> VisibilityCache::Visible(
    uint64_t viewer, absl::Span<const uint64_t> candidates) {
  absl::flat_hash_set<uint64_t> visible;
  std::vector<uint64_t> unknown;
  const absl::Time now = clock_();
  {
    absl::MutexLock lock(&mu_);
    auto viewer_it = answers_.find(viewer);
    for (uint64_t candidate : candidates) {
      if (candidate == viewer) {
        visible.insert(candidate);
        continue;
      }
      if (viewer_it != answers_.end()) {
        auto it = viewer_it->second.find(candidate);
        if (it != viewer_it->second.end() && it->second.expires_at > now) {
          if (it->second.visible) visible.insert(candidate);
          continue;
        }
      }
      unknown.push_back(candidate);
    }
  }
  if (unknown.empty()) return visible;

  // Duplicates would only make the query longer.
  std::sort(unknown.begin(), unknown.end());
  unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
  absl::StatusOr<std::vector<uint64_t>> sharing =
      conversations_->UsersSharingConversation(viewer, unknown);
  if (!sharing.ok()) return sharing.status();
  const absl::flat_hash_set<uint64_t> shared(sharing->begin(), sharing->end());

  absl::MutexLock lock(&mu_);
  TrimLocked(now);
  ViewerAnswers& cached = answers_[viewer];
  if (cached.size() > kMaxAnswersPerViewer) {
    // One viewer asking about ever new ids must not grow its map forever.
    for (auto it = cached.begin(); it != cached.end();) {
      if (it->second.expires_at <= now) {
        cached.erase(it++);
      } else {
        ++it;
      }
    }
    if (cached.size() > kMaxAnswersPerViewer) cached.clear();
  }
  const absl::Time expires_at = now + options_.ttl;
  for (uint64_t candidate : unknown) {
    const bool is_visible = shared.contains(candidate);
    cached[candidate] = Answer{is_visible, expires_at};
    if (is_visible) visible.insert(candidate);
  }
  return visible;
}

void VisibilityCache::TrimLocked(absl::Time now) {
  if (answers_.size() < options_.max_viewers) return;
  for (auto viewer_it = answers_.begin(); viewer_it != answers_.end();) {
    ViewerAnswers& cached = viewer_it->second;
    for (auto it = cached.begin(); it != cached.end();) {
      if (it->second.expires_at <= now) {
        cached.erase(it++);
      } else {
        ++it;
      }
    }
    if (cached.empty()) {
      answers_.erase(viewer_it++);
    } else {
      ++viewer_it;
    }
  }
  if (answers_.size() >= options_.max_viewers) answers_.clear();
}

}  // namespace im::presence
