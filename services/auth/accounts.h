#ifndef IM_SERVICES_AUTH_ACCOUNTS_H_
#define IM_SERVICES_AUTH_ACCOUNTS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "im/auth/v1/auth.pb.h"
#include "services/auth/auth_metrics.h"
#include "services/auth/login_throttle.h"
#include "services/auth/password_hasher.h"
#include "services/auth/revocation_feed.h"
#include "services/common/access_token.h"
#include "storage/session_store.h"
#include "storage/user_store.h"

namespace im::auth {

// The auth service's logic without gRPC: accounts, sessions, tokens and
// service accounts. Every method blocks (database, argon2id); the RPC edge
// runs them on worker pools. Callers are already authenticated (their
// token verified and not revoked); role checks happen here. Thread-safe.
class Accounts {
 public:
  struct Options {
    absl::Duration access_token_ttl = absl::Minutes(15);
    absl::Duration refresh_token_ttl = absl::Hours(24 * 30);
    // Lower-cased usernames that are made admins when they log in (and
    // kept admin in the database). See services/auth/README.md.
    std::vector<std::string> admin_usernames;
    // Login and ExchangeApiKey attempts.
    LoginThrottle::Options login_throttle;
    // Register attempts per peer; successful registrations are given back,
    // so the bucket counts rejected ones (taken names: enumeration).
    LoginThrottle::Options register_throttle = {
        /*per_username=*/{},
        /*per_peer=*/{20, absl::Seconds(3)},
        /*max_tracked_keys=*/100000};
    // Where logins, throttled attempts and revocations are counted; null =
    // AuthMetrics::Unexported(). Must outlive the Accounts.
    AuthMetrics* metrics = nullptr;
  };
  using Clock = std::function<absl::Time()>;

  // All pointers must outlive this object.
  Accounts(const Options& options, storage::UserStore* users,
           storage::SessionStore* sessions, const TokenCodec* codec,
           const PasswordHasher* hasher, RevocationFeed* revocations,
           Clock clock = absl::Now);

  // `peer` is the caller's throttling key (PeerThrottleKey).
  absl::StatusOr<v1::RegisterResponse> Register(
      const v1::RegisterRequest& request, absl::string_view peer);
  absl::StatusOr<v1::LoginResponse> Login(const v1::LoginRequest& request,
                                          absl::string_view peer);
  absl::StatusOr<v1::RefreshResponse> Refresh(
      const v1::RefreshRequest& request);
  absl::StatusOr<v1::ExchangeApiKeyResponse> ExchangeApiKey(
      const v1::ExchangeApiKeyRequest& request, absl::string_view peer);

  absl::StatusOr<v1::LogoutResponse> Logout(const Caller& caller);
  absl::StatusOr<v1::LogoutAllResponse> LogoutAll(const Caller& caller);
  absl::StatusOr<v1::ListSessionsResponse> ListSessions(const Caller& caller);
  absl::StatusOr<v1::WhoAmIResponse> WhoAmI(const Caller& caller);
  absl::StatusOr<v1::LookupUsersResponse> LookupUsers(
      const Caller& caller, const v1::LookupUsersRequest& request);
  absl::StatusOr<v1::ValidateResponse> Validate(
      const Caller& caller, const v1::ValidateRequest& request);

  absl::StatusOr<v1::CreateServiceAccountResponse> CreateServiceAccount(
      const Caller& caller, const v1::CreateServiceAccountRequest& request);
  absl::StatusOr<v1::ListServiceAccountsResponse> ListServiceAccounts(
      const Caller& caller);
  absl::StatusOr<v1::RevokeServiceAccountResponse> RevokeServiceAccount(
      const Caller& caller, const v1::RevokeServiceAccountRequest& request);

  // The one answer for every failed password login, whatever the reason.
  static constexpr absl::string_view kLoginFailed =
      "wrong username or password";

 private:
  // Login without counting its result.
  absl::StatusOr<v1::LoginResponse> AttemptLogin(
      const v1::LoginRequest& request, absl::string_view peer);
  // Counts a throttle refusal and returns `refusal`.
  absl::Status Throttled(AuthMetrics::Throttled operation,
                         absl::Status refusal);
  // Sends revoked sessions to the feed and counts them.
  void PublishRevoked(
      storage::RevokeReason reason,
      const std::vector<storage::RevokedSessionRecord>& revoked);
  // The role a user's tokens carry; promotes --admin_usernames on the way.
  absl::StatusOr<v1::Role> RoleForLogin(const storage::UserRecord& user);
  v1::Role RoleOf(const storage::UserRecord& user) const;
  void FillUser(const storage::UserRecord& record, v1::User* user) const;
  // Mints the access token and fills `tokens` (not the refresh token).
  void FillTokens(uint64_t user_id, uint64_t session_id, v1::Role role,
                  absl::Time now, v1::TokenPair* tokens) const;

  const Options options_;
  const absl::flat_hash_set<std::string> admin_usernames_;
  storage::UserStore* const users_;
  storage::SessionStore* const sessions_;
  const TokenCodec* const codec_;
  const PasswordHasher* const hasher_;
  RevocationFeed* const revocations_;
  const Clock clock_;
  AuthMetrics& metrics_;
  LoginThrottle login_throttle_;
  LoginThrottle register_throttle_;
};

}  // namespace im::auth

#endif  // IM_SERVICES_AUTH_ACCOUNTS_H_
