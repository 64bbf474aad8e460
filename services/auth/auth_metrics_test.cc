#include "services/auth/auth_metrics.h"

#include "gtest/gtest.h"
#include "observability/metric_reader.h"

namespace im::auth {
namespace {

using observability::FindSample;

TEST(AuthMetricsTest, EverySeriesStartsAtZero) {
  prometheus::Registry registry;
  AuthMetrics metrics(registry);
  for (const char* result : {"ok", "failed", "throttled", "invalid", "error"}) {
    EXPECT_EQ(
        FindSample(registry, "im_auth_logins_total", {{"result", result}}), 0)
        << result;
  }
  for (const char* operation : {"login", "exchange_api_key", "register"}) {
    EXPECT_EQ(FindSample(registry, "im_auth_throttled_total",
                         {{"operation", operation}}),
              0)
        << operation;
  }
  for (const char* reason :
       {"logout", "logout_all", "refresh_reuse", "service_account", "admin"}) {
    EXPECT_EQ(FindSample(registry, "im_auth_sessions_revoked_total",
                         {{"reason", reason}}),
              0)
        << reason;
  }
}

TEST(AuthMetricsTest, LoginResultsFromStatus) {
  prometheus::Registry registry;
  AuthMetrics metrics(registry);
  metrics.LoginFinished(absl::OkStatus());
  metrics.LoginFinished(absl::OkStatus());
  metrics.LoginFinished(absl::UnauthenticatedError("wrong"));
  metrics.LoginFinished(absl::ResourceExhaustedError("slow down"));
  metrics.LoginFinished(absl::InvalidArgumentError("device_kind"));
  metrics.LoginFinished(absl::UnavailableError("database"));
  metrics.LoginFinished(absl::InternalError("bug"));
  auto logins = [&](const char* result) {
    return FindSample(registry, "im_auth_logins_total", {{"result", result}});
  };
  EXPECT_EQ(logins("ok"), 2);
  EXPECT_EQ(logins("failed"), 1);
  EXPECT_EQ(logins("throttled"), 1);
  EXPECT_EQ(logins("invalid"), 1);
  EXPECT_EQ(logins("error"), 2);
}

TEST(AuthMetricsTest, ThrottledAndRevoked) {
  prometheus::Registry registry;
  AuthMetrics metrics(registry);
  metrics.AttemptThrottled(AuthMetrics::Throttled::kLogin);
  metrics.AttemptThrottled(AuthMetrics::Throttled::kLogin);
  metrics.AttemptThrottled(AuthMetrics::Throttled::kRegister);
  metrics.SessionsRevoked(storage::RevokeReason::kLogout, 1);
  metrics.SessionsRevoked(storage::RevokeReason::kLogoutAll, 3);
  metrics.SessionsRevoked(storage::RevokeReason::kLogoutAll, 0);
  EXPECT_EQ(
      FindSample(registry, "im_auth_throttled_total", {{"operation", "login"}}),
      2);
  EXPECT_EQ(FindSample(registry, "im_auth_throttled_total",
                       {{"operation", "register"}}),
            1);
  EXPECT_EQ(FindSample(registry, "im_auth_throttled_total",
                       {{"operation", "exchange_api_key"}}),
            0);
  EXPECT_EQ(FindSample(registry, "im_auth_sessions_revoked_total",
                       {{"reason", "logout"}}),
            1);
  EXPECT_EQ(FindSample(registry, "im_auth_sessions_revoked_total",
                       {{"reason", "logout_all"}}),
            3);
}

TEST(AuthMetricsTest, UnexportedIsOneInstance) {
  EXPECT_EQ(&AuthMetrics::Unexported(), &AuthMetrics::Unexported());
  AuthMetrics::Unexported().LoginFinished(absl::OkStatus());
}

}  // namespace
}  // namespace im::auth
