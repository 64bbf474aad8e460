#include "services/auth/auth_metrics.h"

#include "observability/unexported_registry.h"

namespace im::auth {
namespace {

constexpr const char* kLoginResults[] = {"ok", "failed", "throttled", "invalid",
                                         "error"};
constexpr const char* kThrottledOperations[] = {"login", "exchange_api_key",
                                                "register"};

// Label values by storage::RevokeReason.
const char* ReasonLabel(storage::RevokeReason reason) {
  switch (reason) {
    case storage::RevokeReason::kLogout:
      return "logout";
    case storage::RevokeReason::kLogoutAll:
      return "logout_all";
    case storage::RevokeReason::kRefreshReuse:
      return "refresh_reuse";
    case storage::RevokeReason::kServiceAccountRevoked:
      return "service_account";
    case storage::RevokeReason::kAdmin:
      return "admin";
  }
  return "other";
}

constexpr storage::RevokeReason kReasons[] = {
    storage::RevokeReason::kLogout, storage::RevokeReason::kLogoutAll,
    storage::RevokeReason::kRefreshReuse,
    storage::RevokeReason::kServiceAccountRevoked,
    storage::RevokeReason::kAdmin};

}  // namespace

AuthMetrics& AuthMetrics::Unexported() {
  static AuthMetrics* const metrics =
      new AuthMetrics(observability::UnexportedRegistry());
  return *metrics;
}

AuthMetrics::AuthMetrics(prometheus::Registry& registry)
    : logins_(prometheus::BuildCounter()
                  .Name("im_auth_logins_total")
                  .Help("Password logins by result.")
                  .Register(registry)),
      throttled_(prometheus::BuildCounter()
                     .Name("im_auth_throttled_total")
                     .Help("Credential attempts refused by the throttle.")
                     .Register(registry)),
      revoked_(prometheus::BuildCounter()
                   .Name("im_auth_sessions_revoked_total")
                   .Help("Sessions revoked, by reason.")
                   .Register(registry)) {
  for (int i = 0; i < 5; ++i) {
    login_results_[i] = &logins_.Add({{"result", kLoginResults[i]}});
  }
  for (int i = 0; i < 3; ++i) {
    throttled_operations_[i] =
        &throttled_.Add({{"operation", kThrottledOperations[i]}});
  }
  for (storage::RevokeReason reason : kReasons) {
    revoke_reasons_[static_cast<int>(reason)] =
        &revoked_.Add({{"reason", ReasonLabel(reason)}});
  }
}

void AuthMetrics::LoginFinished(const absl::Status& status) {
  LoginResult result = LoginResult::kError;
  if (status.ok()) {
    result = LoginResult::kOk;
  } else if (absl::IsUnauthenticated(status)) {
    result = LoginResult::kFailed;
  } else if (absl::IsResourceExhausted(status)) {
    result = LoginResult::kThrottled;
  } else if (absl::IsInvalidArgument(status)) {
    result = LoginResult::kInvalid;
  }
  login_results_[static_cast<int>(result)]->Increment();
}

void AuthMetrics::AttemptThrottled(Throttled operation) {
  throttled_operations_[static_cast<int>(operation)]->Increment();
}

void AuthMetrics::SessionsRevoked(storage::RevokeReason reason,
                                  size_t sessions) {
  const int index = static_cast<int>(reason);
  if (index <= 0 || index >= 6 || sessions == 0) return;
  revoke_reasons_[index]->Increment(static_cast<double>(sessions));
}

}  // namespace im::auth
