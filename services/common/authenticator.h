#ifndef IM_SERVICES_COMMON_AUTHENTICATOR_H_
#define IM_SERVICES_COMMON_AUTHENTICATOR_H_

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/access_token.h"

namespace im {

// Sessions revoked while their access tokens may still be unexpired. Fed by
// the auth service's WatchRevocations stream (or directly, inside auth);
// read on every authenticated call. Thread-safe.
class RevocationSet {
 public:
  // Called (outside the lock) for each newly revoked session.
  using Listener = std::function<void(uint64_t session_id, uint64_t user_id)>;

  void Add(uint64_t session_id, uint64_t user_id, absl::Time revoked_at);
  bool IsRevoked(uint64_t session_id) const;
  // Forgets revocations older than `horizon` (tokens minted before it have
  // expired anyway).
  void PruneOlderThan(absl::Time horizon);
  size_t size() const;

  // Listeners are for streams that must end when their session is revoked.
  // A listener may still run once just after RemoveListener returns (it is
  // called outside the lock), so it must not own what it points to.
  // Returns an id for RemoveListener.
  uint64_t AddListener(Listener listener);
  void RemoveListener(uint64_t id);

 private:
  struct Revoked {
    uint64_t user_id;
    absl::Time revoked_at;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Revoked> revoked_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Listener> listeners_ ABSL_GUARDED_BY(mu_);
  uint64_t next_listener_id_ ABSL_GUARDED_BY(mu_) = 1;
};

// The auth check every service runs at the start of every authenticated
// RPC: reads `authorization: Bearer <token>` from the call's metadata,
// verifies the token and checks it against the revocation set.
// Thread-safe; the codec and set must outlive it.
class Authenticator {
 public:
  using Clock = std::function<absl::Time()>;

  Authenticator(const TokenCodec* codec, const RevocationSet* revocations,
                Clock clock = absl::Now)
      : codec_(codec), revocations_(revocations), clock_(std::move(clock)) {}

  // UNAUTHENTICATED when the header is missing or malformed, the token does
  // not verify or has expired, or its session was revoked.
  absl::StatusOr<Caller> Authenticate(
      const grpc::ServerContextBase& context) const;
  absl::StatusOr<Caller> AuthenticateToken(absl::string_view token) const;

  absl::Time Now() const { return clock_(); }

 private:
  const TokenCodec* codec_;
  const RevocationSet* revocations_;  // may be null (no revocation feed)
  Clock clock_;
};

// PERMISSION_DENIED unless the caller has one of `roles`.
absl::Status RequireRole(const Caller& caller,
                         std::initializer_list<auth::v1::Role> roles);

// The token of the call's `authorization: Bearer <token>` metadata (a view
// into the context's metadata); UNAUTHENTICATED when missing or malformed.
// For services that forward a caller's own token to another service.
absl::StatusOr<absl::string_view> BearerToken(
    const grpc::ServerContextBase& context);

// Adds `authorization: Bearer <token>` to an outgoing call.
void AttachBearerToken(grpc::ClientContext* context, absl::string_view token);

// Mints short-lived ROLE_INTERNAL tokens for calls between services and
// re-mints them before they expire. Thread-safe.
class InternalTokenSource {
 public:
  explicit InternalTokenSource(const TokenCodec* codec,
                               absl::Duration ttl = absl::Minutes(5))
      : codec_(codec), ttl_(ttl) {}

  std::string Token();

 private:
  const TokenCodec* codec_;
  const absl::Duration ttl_;
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  absl::Time expires_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace im

#endif  // IM_SERVICES_COMMON_AUTHENTICATOR_H_
