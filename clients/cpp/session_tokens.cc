#include "clients/cpp/session_tokens.h"

#include <algorithm>
#include <utility>

#include "clients/cpp/unary_call.h"
#include "services/common/proto_time.h"

namespace im::client {

namespace v1 = ::im::auth::v1;

bool IsTransient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

SessionTokens::SessionTokens(const Options& options,
                             std::shared_ptr<grpc::Channel> auth_channel,
                             std::shared_ptr<ClientRuntime> runtime)
    : options_(options),
      stub_(v1::AuthService::NewStub(std::move(auth_channel))),
      runtime_(std::move(runtime)),
      retry_backoff_(options.retry_backoff) {}

SessionTokens::~SessionTokens() { Stop(); }

void SessionTokens::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  if (renewal_timer_ != 0 && runtime_->timers().Cancel(renewal_timer_)) {
    --background_tasks_;
  }
  renewal_timer_ = 0;
  while (background_tasks_ > 0) tasks_done_.Wait(&mu_);
}

absl::StatusOr<v1::TokenPair> SessionTokens::LoginRpc(
    const std::string& username, const std::string& password) {
  v1::LoginRequest request;
  request.set_username(username);
  request.set_password(password);
  request.set_device_name(options_.device_name);
  request.set_device_kind(options_.device_kind);
  absl::StatusOr<v1::LoginResponse> response =
      CallUnary(stub_.get(), &v1::AuthService::Stub::Login, request, "",
                options_.rpc_timeout);
  if (!response.ok()) return response.status();
  return response->tokens();
}

absl::Status SessionTokens::Login(const std::string& username,
                                  const std::string& password) {
  absl::StatusOr<v1::TokenPair> tokens = LoginRpc(username, password);
  if (!tokens.ok()) return tokens.status();
  {
    absl::MutexLock lock(&mu_);
    credential_ = Credential::kPassword;
    secret_a_ = options_.relogin_with_password ? username : "";
    secret_b_ = options_.relogin_with_password ? password : "";
    lost_ = false;
  }
  Install(*tokens);
  return absl::OkStatus();
}

absl::Status SessionTokens::ExchangeApiKey(const std::string& api_key) {
  v1::ExchangeApiKeyRequest request;
  request.set_api_key(api_key);
  absl::StatusOr<v1::ExchangeApiKeyResponse> response =
      CallUnary(stub_.get(), &v1::AuthService::Stub::ExchangeApiKey, request,
                "", options_.rpc_timeout);
  if (!response.ok()) return response.status();
  {
    absl::MutexLock lock(&mu_);
    credential_ = Credential::kApiKey;
    secret_a_ = api_key;
    secret_b_.clear();
    lost_ = false;
  }
  Install(response->tokens());
  return absl::OkStatus();
}

absl::Status SessionTokens::Adopt(const v1::TokenPair& tokens) {
  const absl::Time expires_at = FromProtoTime(tokens.access_expires_at());
  {
    absl::MutexLock lock(&mu_);
    credential_ = Credential::kTokens;
    secret_a_.clear();
    secret_b_.clear();
    lost_ = false;
    tokens_ = tokens;
    access_expires_at_ = expires_at;
  }
  // A token about to expire would fail the first call; renew it first.
  if (expires_at - absl::Now() < absl::Seconds(5)) return RenewNow();
  Install(tokens);
  return absl::OkStatus();
}

absl::StatusOr<v1::TokenPair> SessionTokens::RenewRpc(
    Credential credential, const std::string& secret_a,
    const std::string& secret_b, const std::string& refresh_token) {
  switch (credential) {
    case Credential::kNone:
      return absl::FailedPreconditionError("not signed in");
    case Credential::kApiKey: {
      v1::ExchangeApiKeyRequest request;
      request.set_api_key(secret_a);
      absl::StatusOr<v1::ExchangeApiKeyResponse> response =
          CallUnary(stub_.get(), &v1::AuthService::Stub::ExchangeApiKey,
                    request, "", options_.rpc_timeout);
      if (!response.ok()) return response.status();
      return response->tokens();
    }
    case Credential::kTokens:
    case Credential::kPassword:
      break;
  }
  const bool can_relogin =
      credential == Credential::kPassword && !secret_a.empty();
  if (!refresh_token.empty()) {
    v1::RefreshRequest request;
    request.set_refresh_token(refresh_token);
    absl::StatusOr<v1::RefreshResponse> response =
        CallUnary(stub_.get(), &v1::AuthService::Stub::Refresh, request, "",
                  options_.rpc_timeout);
    if (response.ok()) return response->tokens();
    if (!can_relogin || IsTransient(response.status())) {
      return response.status();
    }
  } else if (!can_relogin) {
    return absl::UnauthenticatedError(
        "the session has no refresh token; sign in again");
  }
  return LoginRpc(secret_a, secret_b);
}

absl::Status SessionTokens::RenewNow() {
  Credential credential;
  std::string secret_a, secret_b, refresh_token;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return absl::FailedPreconditionError("session stopped");
    if (lost_) return last_renewal_;
    if (renewing_) {
      // Share the renewal in flight: a second Refresh with the same
      // refresh token would revoke the session.
      const uint64_t seen = renewals_done_;
      while (renewals_done_ == seen) renewed_.Wait(&mu_);
      return last_renewal_;
    }
    renewing_ = true;
    credential = credential_;
    secret_a = secret_a_;
    secret_b = secret_b_;
    refresh_token = tokens_.refresh_token();
  }
  absl::StatusOr<v1::TokenPair> renewed =
      RenewRpc(credential, secret_a, secret_b, refresh_token);
  if (renewed.ok()) Install(*renewed);
  const absl::Status status = renewed.status();
  {
    absl::MutexLock lock(&mu_);
    renewing_ = false;
    ++renewals_done_;
    last_renewal_ = status;
    renewed_.SignalAll();
  }
  if (!status.ok() && !IsTransient(status)) MarkLost(status);
  return status;
}

void SessionTokens::RenewAsync(std::function<void(absl::Status)> done) {
  {
    absl::MutexLock lock(&mu_);
    ++background_tasks_;
  }
  auto task = [this, done]() mutable {
    const absl::Status status = RenewNow();
    done(status);
    absl::MutexLock lock(&mu_);
    EndTaskLocked();
  };
  if (!runtime_->workers().Submit(task).ok()) {
    // Never call `done` on the caller's thread (it may hold its own lock):
    // report from the timer thread instead.
    runtime_->timers().Schedule(absl::Now(), [this, done]() mutable {
      done(absl::UnavailableError("client runtime is shutting down"));
      absl::MutexLock lock(&mu_);
      EndTaskLocked();
    });
  }
}

void SessionTokens::Install(const v1::TokenPair& tokens) {
  std::vector<TokensListener> listeners;
  {
    absl::MutexLock lock(&mu_);
    tokens_ = tokens;
    const absl::Time now = absl::Now();
    access_expires_at_ = FromProtoTime(tokens.access_expires_at());
    retry_backoff_.Reset();
    const absl::Duration lifetime =
        std::max(absl::ZeroDuration(), access_expires_at_ - now);
    ScheduleRenewalLocked(now + lifetime * options_.refresh_at_fraction);
    listeners = tokens_listeners_;
  }
  for (const TokensListener& listener : listeners) listener(tokens);
}

void SessionTokens::ScheduleRenewalLocked(absl::Time when) {
  if (stopped_) return;
  if (renewal_timer_ != 0 && runtime_->timers().Cancel(renewal_timer_)) {
    --background_tasks_;
  }
  ++background_tasks_;
  renewal_timer_ =
      runtime_->timers().Schedule(when, [this] { OnRenewalTimer(); });
}

void SessionTokens::OnRenewalTimer() {
  {
    absl::MutexLock lock(&mu_);
    renewal_timer_ = 0;
    if (stopped_ || lost_) {
      EndTaskLocked();
      return;
    }
  }
  // The RPC blocks: run it on a worker, which inherits the task count.
  absl::Status submitted = runtime_->workers().Submit([this] {
    const absl::Status status = RenewNow();
    absl::MutexLock lock(&mu_);
    if (!status.ok() && IsTransient(status)) {
      ScheduleRenewalLocked(absl::Now() + retry_backoff_.Next());
    }
    EndTaskLocked();
  });
  if (!submitted.ok()) {
    absl::MutexLock lock(&mu_);
    ScheduleRenewalLocked(absl::Now() + retry_backoff_.Next());
    EndTaskLocked();
  }
}

void SessionTokens::EndTaskLocked() {
  if (--background_tasks_ == 0) tasks_done_.SignalAll();
}

void SessionTokens::MarkLost(const absl::Status& status) {
  std::vector<LostListener> listeners;
  {
    absl::MutexLock lock(&mu_);
    if (lost_) return;
    lost_ = true;
    last_renewal_ = status;
    listeners = lost_listeners_;
  }
  for (const LostListener& listener : listeners) listener(status);
}

std::string SessionTokens::AccessToken() const {
  absl::MutexLock lock(&mu_);
  return tokens_.access_token();
}

absl::Time SessionTokens::AccessExpiresAt() const {
  absl::MutexLock lock(&mu_);
  return access_expires_at_;
}

v1::TokenPair SessionTokens::tokens() const {
  absl::MutexLock lock(&mu_);
  return tokens_;
}

bool SessionTokens::signed_in() const {
  absl::MutexLock lock(&mu_);
  return credential_ != Credential::kNone && !lost_;
}

uint64_t SessionTokens::user_id() const {
  absl::MutexLock lock(&mu_);
  return tokens_.user_id();
}

void SessionTokens::AddTokensListener(TokensListener listener) {
  absl::MutexLock lock(&mu_);
  tokens_listeners_.push_back(std::move(listener));
}

void SessionTokens::AddLostListener(LostListener listener) {
  absl::MutexLock lock(&mu_);
  lost_listeners_.push_back(std::move(listener));
}

}  // namespace im::client
