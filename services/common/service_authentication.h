#ifndef IM_SERVICES_COMMON_SERVICE_AUTHENTICATION_H_
#define IM_SERVICES_COMMON_SERVICE_AUTHENTICATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/common/revocation_watcher.h"
#include "services/common/service_host.h"

// For main.cc files: how a service authenticates its callers, wired once.

namespace im {

struct ServiceAuthentication {
  const Authenticator* authenticator = nullptr;
  // Kept in sync with auth (for listeners that end a revoked session's
  // streams).
  RevocationSet* revocations = nullptr;
  // ROLE_INTERNAL tokens for calls to other services.
  InternalTokenSource* internal_tokens = nullptr;
};

// An Authenticator over `codec` whose RevocationSet a RevocationWatcher
// keeps in sync with the auth service at `auth_addr` (empty: no feed, with
// a warning; revoked sessions then stay valid until their tokens expire).
// Everything is owned by `bundle`, which stops the watcher on shutdown.
absl::StatusOr<ServiceAuthentication> StartServiceAuthentication(
    ServiceBundle& bundle, const TokenCodec* codec,
    const std::string& auth_addr, const TlsOptions& peer_tls,
    const RevocationWatcher::Options& watcher_options = {});

}  // namespace im

#endif  // IM_SERVICES_COMMON_SERVICE_AUTHENTICATION_H_
