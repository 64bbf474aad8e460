#ifndef IM_CLIENTS_CPP_SESSION_TOKENS_H_
#define IM_CLIENTS_CPP_SESSION_TOKENS_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/cpp/backoff.h"
#include "clients/cpp/client_runtime.h"
#include "im/auth/v1/auth.grpc.pb.h"

namespace im::client {

// Where a stream or call gets its bearer token, and how it asks for a new
// one (ChatSession depends on this, not on the auth RPCs).
class AccessTokenSource {
 public:
  virtual ~AccessTokenSource() = default;
  // The current access token; empty when there is none. Never blocks on
  // an RPC.
  virtual std::string AccessToken() const = 0;
  virtual absl::Time AccessExpiresAt() const = 0;
  // Obtains a new access token on a background thread and calls `done`
  // there. UNAUTHENTICATED: the session can no longer be renewed.
  virtual void RenewAsync(std::function<void(absl::Status)> done) = 0;
};

// One signed-in session's tokens, kept fresh: refreshes the access token
// when `refresh_at_fraction` of its lifetime has passed (Refresh with the
// single-use refresh token; service accounts exchange their API key again),
// retrying transient failures with backoff. When renewal is refused
// (UNAUTHENTICATED: revoked, refresh token spent or expired) a service
// account exchanges its key again, and a user with relogin_with_password
// logs in again; otherwise the session is lost and the lost listener runs.
//
// Refresh tokens rotate: never run two copies of one session's tokens in
// two processes that both refresh (the second use of a refresh token
// revokes the session). A Refresh whose answer is lost (deadline) has the
// same effect, so rpc_timeout is generous.
//
// Thread-safe. Listeners run on the thread that renewed (a runtime worker
// or the caller of a blocking method), outside the lock.
class SessionTokens final : public AccessTokenSource {
 public:
  struct Options {
    // For Login: shown in session lists and presence.
    std::string device_name;
    auth::v1::DeviceKind device_kind = auth::v1::DEVICE_KIND_UNSPECIFIED;
    // Renew when this fraction of the access token's lifetime has passed.
    double refresh_at_fraction = 0.75;
    absl::Duration rpc_timeout = absl::Seconds(30);
    ExponentialBackoff::Options retry_backoff = {absl::Milliseconds(500),
                                                 absl::Seconds(30), 2.0};
    // Keep the password in memory and log in again when a refresh is
    // refused (a long-running client that must not lose its session).
    bool relogin_with_password = false;
  };
  using TokensListener = std::function<void(const auth::v1::TokenPair&)>;
  using LostListener = std::function<void(const absl::Status&)>;

  // `auth_channel` leads to the auth service; `runtime` must outlive this.
  SessionTokens(const Options& options,
                std::shared_ptr<grpc::Channel> auth_channel,
                std::shared_ptr<ClientRuntime> runtime);
  // Stop()s.
  ~SessionTokens() override;

  SessionTokens(const SessionTokens&) = delete;
  SessionTokens& operator=(const SessionTokens&) = delete;

  // Blocking sign-ins; each replaces the current session.
  absl::Status Login(const std::string& username, const std::string& password);
  absl::Status ExchangeApiKey(const std::string& api_key);
  // Takes over tokens a previous run stored. Renews at once when the access
  // token has (nearly) expired.
  absl::Status Adopt(const auth::v1::TokenPair& tokens);

  // Renews now (blocking). Concurrent callers share one renewal.
  absl::Status RenewNow();

  // AccessTokenSource.
  std::string AccessToken() const override;
  absl::Time AccessExpiresAt() const override;
  void RenewAsync(std::function<void(absl::Status)> done) override;

  // The current tokens (to store them: the refresh token changes on every
  // renewal).
  auth::v1::TokenPair tokens() const;
  bool signed_in() const;
  uint64_t user_id() const;

  // Called after every new token pair (Login, renewal).
  void AddTokensListener(TokensListener listener);
  // Called once when the session cannot be renewed any more.
  void AddLostListener(LostListener listener);

  // Cancels the scheduled renewal; later renewals fail FAILED_PRECONDITION.
  // Idempotent.
  void Stop();

 private:
  enum class Credential { kNone, kTokens, kPassword, kApiKey };

  // Runs the renewal RPC(s) for the current credential.
  absl::StatusOr<auth::v1::TokenPair> RenewRpc(Credential credential,
                                               const std::string& secret_a,
                                               const std::string& secret_b,
                                               const std::string& refresh_token);
  absl::StatusOr<auth::v1::TokenPair> LoginRpc(const std::string& username,
                                               const std::string& password);
  // Installs new tokens, schedules the next renewal, tells listeners.
  void Install(const auth::v1::TokenPair& tokens)
      ABSL_LOCKS_EXCLUDED(mu_);
  void ScheduleRenewalLocked(absl::Time when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnRenewalTimer();
  void EndTaskLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkLost(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  const std::unique_ptr<auth::v1::AuthService::Stub> stub_;
  const std::shared_ptr<ClientRuntime> runtime_;

  mutable absl::Mutex mu_;
  auth::v1::TokenPair tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time access_expires_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  Credential credential_ ABSL_GUARDED_BY(mu_) = Credential::kNone;
  // kPassword with relogin: username and password; kApiKey: the key.
  std::string secret_a_ ABSL_GUARDED_BY(mu_);
  std::string secret_b_ ABSL_GUARDED_BY(mu_);
  bool renewing_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar renewed_;
  absl::CondVar tasks_done_;
  uint64_t renewals_done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_renewal_ ABSL_GUARDED_BY(mu_);
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  message::TimerQueue::TimerId renewal_timer_ ABSL_GUARDED_BY(mu_) = 0;
  // Timer callbacks and queued renewals not yet finished; Stop waits.
  int background_tasks_ ABSL_GUARDED_BY(mu_) = 0;
  ExponentialBackoff retry_backoff_ ABSL_GUARDED_BY(mu_);
  std::vector<TokensListener> tokens_listeners_ ABSL_GUARDED_BY(mu_);
  std::vector<LostListener> lost_listeners_ ABSL_GUARDED_BY(mu_);
};

// Whether a failed RPC may succeed when simply tried again later.
bool IsTransient(const absl::Status& status);

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_SESSION_TOKENS_H_
