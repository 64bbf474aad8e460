#include "services/auth/login_throttle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/retry_after.h"

namespace im::auth {
namespace {

constexpr absl::string_view kTooMany = "too many failed attempts";
// Sweeping is O(tracked keys); a flood of new keys must not make every
// attempt pay for it.
constexpr absl::Duration kMinSweepInterval = absl::Seconds(1);

}  // namespace

LoginThrottle::LoginThrottle(const Options& options, Clock clock)
    : options_(options), clock_(std::move(clock)) {}

void LoginThrottle::Refill(Bucket& bucket, const Limit& limit, absl::Time now) {
  if (now > bucket.updated) {
    bucket.tokens = std::min<double>(
        limit.burst, bucket.tokens + absl::FDivDuration(now - bucket.updated,
                                                        limit.refill_interval));
  }
  bucket.updated = std::max(bucket.updated, now);
}

LoginThrottle::Bucket* LoginThrottle::FindOrAddLocked(BucketMap& map,
                                                      const Limit& limit,
                                                      absl::string_view key,
                                                      absl::Time now) {
  auto it = map.find(key);
  if (it != map.end()) {
    Refill(it->second, limit, now);
    return &it->second;
  }
  if (by_username_.size() + by_peer_.size() >= options_.max_tracked_keys) {
    DropFullBucketsLocked(now);
    if (by_username_.size() + by_peer_.size() >= options_.max_tracked_keys) {
      return nullptr;
    }
  }
  Bucket& bucket = map[key];
  bucket.tokens = limit.burst;
  bucket.updated = now;
  return &bucket;
}

void LoginThrottle::DropFullBucketsLocked(absl::Time now) {
  if (now - last_sweep_ < kMinSweepInterval) return;
  last_sweep_ = now;
  const auto sweep = [now](BucketMap& map, const Limit& limit) {
    absl::erase_if(map, [&](auto& entry) {
      Refill(entry.second, limit, now);
      return entry.second.tokens >= limit.burst;
    });
  };
  sweep(by_username_, options_.per_username);
  sweep(by_peer_, options_.per_peer);
}

absl::Status LoginThrottle::TryAcquire(absl::string_view username,
                                       absl::string_view peer) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  Bucket* user_bucket = nullptr;
  Bucket* peer_bucket = nullptr;
  if (!username.empty()) {
    user_bucket =
        FindOrAddLocked(by_username_, options_.per_username, username, now);
    if (user_bucket == nullptr) {
      return RetryAfterError(kTooMany, options_.per_username.refill_interval);
    }
  }
  if (!peer.empty()) {
    peer_bucket = FindOrAddLocked(by_peer_, options_.per_peer, peer, now);
    if (peer_bucket == nullptr) {
      return RetryAfterError(kTooMany, options_.per_peer.refill_interval);
    }
  }
  absl::Duration wait = absl::ZeroDuration();
  if (user_bucket != nullptr && user_bucket->tokens < 1) {
    wait = std::max(wait, (1 - user_bucket->tokens) *
                              options_.per_username.refill_interval);
  }
  if (peer_bucket != nullptr && peer_bucket->tokens < 1) {
    wait = std::max(
        wait, (1 - peer_bucket->tokens) * options_.per_peer.refill_interval);
  }
  if (wait > absl::ZeroDuration()) return RetryAfterError(kTooMany, wait);
  if (user_bucket != nullptr) user_bucket->tokens -= 1;
  if (peer_bucket != nullptr) peer_bucket->tokens -= 1;
  return absl::OkStatus();
}

void LoginThrottle::RecordSuccess(absl::string_view username,
                                  absl::string_view peer) {
  absl::MutexLock lock(&mu_);
  if (auto it = by_username_.find(username); it != by_username_.end()) {
    by_username_.erase(it);  // absent means full
  }
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) {
    Refill(it->second, options_.per_peer, clock_());
    it->second.tokens =
        std::min<double>(options_.per_peer.burst, it->second.tokens + 1);
  }
}

size_t LoginThrottle::tracked_keys() const {
  absl::MutexLock lock(&mu_);
  return by_username_.size() + by_peer_.size();
}

std::string PeerThrottleKey(absl::string_view grpc_peer) {
  if (absl::StartsWith(grpc_peer, "ipv4:")) {
    absl::string_view rest = grpc_peer.substr(5);
    const size_t colon = rest.rfind(':');
    return std::string(rest.substr(0, colon));
  }
  if (absl::StartsWith(grpc_peer, "ipv6:")) {
    absl::string_view rest = grpc_peer.substr(5);
    if (absl::StartsWith(rest, "[")) {
      const size_t close = rest.find(']');
      if (close != absl::string_view::npos) rest = rest.substr(1, close - 1);
    }
    // Drop a zone id ("fe80::1%eth0").
    rest = rest.substr(0, rest.find('%'));
    in6_addr addr;
    const std::string text(rest);
    if (inet_pton(AF_INET6, text.c_str(), &addr) != 1) return text;
    // IPv4-mapped addresses are IPv4 peers.
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0,    0,
                                                  0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, addr.s6_addr)) {
      return absl::StrCat(addr.s6_addr[12], ".", addr.s6_addr[13], ".",
                          addr.s6_addr[14], ".", addr.s6_addr[15]);
    }
    std::fill(addr.s6_addr + 8, addr.s6_addr + 16, 0);
    char buffer[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &addr, buffer, sizeof(buffer));
    return absl::StrCat(buffer, "/64");
  }
  if (absl::StartsWith(grpc_peer, "unix:")) return "unix";
  return std::string(grpc_peer);
}

}  // namespace im::auth
