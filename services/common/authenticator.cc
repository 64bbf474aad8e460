#include "services/common/authenticator.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace im {

void RevocationSet::Add(uint64_t session_id, uint64_t user_id,
                        absl::Time revoked_at) {
  std::vector<Listener> to_notify;
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] =
        revoked_.try_emplace(session_id, Revoked{user_id, revoked_at});
    if (!inserted) return;
    to_notify.reserve(listeners_.size());
    for (const auto& [id, listener] : listeners_) to_notify.push_back(listener);
  }
  for (const Listener& listener : to_notify) listener(session_id, user_id);
}

bool RevocationSet::IsRevoked(uint64_t session_id) const {
  absl::MutexLock lock(&mu_);
  return revoked_.contains(session_id);
}

void RevocationSet::PruneOlderThan(absl::Time horizon) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(revoked_, [&](const auto& entry) {
    return entry.second.revoked_at < horizon;
  });
}

size_t RevocationSet::size() const {
  absl::MutexLock lock(&mu_);
  return revoked_.size();
}

uint64_t RevocationSet::AddListener(Listener listener) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void RevocationSet::RemoveListener(uint64_t id) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(id);
}

absl::StatusOr<absl::string_view> BearerToken(
    const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "missing `authorization: Bearer <token>` metadata");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "authorization metadata must be `Bearer <token>`");
  }
  return absl::StripAsciiWhitespace(value.substr(kScheme.size()));
}

absl::StatusOr<Caller> Authenticator::Authenticate(
    const grpc::ServerContextBase& context) const {
  absl::StatusOr<absl::string_view> token = BearerToken(context);
  if (!token.ok()) return token.status();
  return AuthenticateToken(*token);
}

absl::StatusOr<Caller> Authenticator::AuthenticateToken(
    absl::string_view token) const {
  absl::StatusOr<Caller> caller = codec_->Verify(token, clock_());
  if (!caller.ok()) return caller.status();
  if (revocations_ != nullptr && caller->session_id != 0 &&
      revocations_->IsRevoked(caller->session_id)) {
    return absl::UnauthenticatedError("session has been revoked");
  }
  return caller;
}

absl::Status RequireRole(const Caller& caller,
                         std::initializer_list<auth::v1::Role> roles) {
  for (auth::v1::Role role : roles) {
    if (caller.role == role) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("role ", auth::v1::Role_Name(caller.role),
                   " may not call this method"));
}

void AttachBearerToken(grpc::ClientContext* context, absl::string_view token) {
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

std::string InternalTokenSource::Token() {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  // Re-mint when less than half the lifetime is left, so a token handed out
  // never expires mid-call.
  if (now >= expires_at_ - ttl_ / 2) {
    Caller caller;
    caller.role = auth::v1::ROLE_INTERNAL;
    caller.expires_at = now + ttl_;
    token_ = codec_->Mint(caller, now);
    expires_at_ = caller.expires_at;
  }
  return token_;
}

}  // namespace im
