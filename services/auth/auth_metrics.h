#ifndef IM_SERVICES_AUTH_AUTH_METRICS_H_
#define IM_SERVICES_AUTH_AUTH_METRICS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"
#include "storage/session_store.h"

namespace im::auth {

// The auth service's own metrics (README.md, Metrics):
//   im_auth_logins_total{result}         ok, failed (wrong username or
//                                        password), throttled, invalid
//                                        (malformed request), error
//   im_auth_throttled_total{operation}   credential attempts the throttle
//                                        refused: login, exchange_api_key,
//                                        register
//   im_auth_sessions_revoked_total{reason}  logout, logout_all,
//                                        refresh_reuse, service_account,
//                                        admin
// Every series exists from the start. Thread-safe.
class AuthMetrics {
 public:
  enum class Throttled { kLogin, kExchangeApiKey, kRegister };

  // Registers the families in `registry`, which must outlive this.
  explicit AuthMetrics(prometheus::Registry& registry);
  // A process-wide instance whose registry nothing serves: the default for
  // code built without metrics (tests, tools).
  static AuthMetrics& Unexported();

  AuthMetrics(const AuthMetrics&) = delete;
  AuthMetrics& operator=(const AuthMetrics&) = delete;

  // The result of one Login, from the status it returned.
  void LoginFinished(const absl::Status& status);
  void AttemptThrottled(Throttled operation);
  void SessionsRevoked(storage::RevokeReason reason, size_t sessions);

 private:
  prometheus::Family<prometheus::Counter>& logins_;
  prometheus::Family<prometheus::Counter>& throttled_;
  prometheus::Family<prometheus::Counter>& revoked_;
  enum class LoginResult { kOk, kFailed, kThrottled, kInvalid, kError };
  // Indexed by LoginResult and Throttled values.
  prometheus::Counter* login_results_[5];
  prometheus::Counter* throttled_operations_[3];
  // Indexed by storage::RevokeReason values (1-5).
  prometheus::Counter* revoke_reasons_[6] = {};
};

}  // namespace im::auth

#endif  // IM_SERVICES_AUTH_AUTH_METRICS_H_
