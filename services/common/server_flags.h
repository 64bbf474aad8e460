#ifndef IM_SERVICES_COMMON_SERVER_FLAGS_H_
#define IM_SERVICES_COMMON_SERVER_FLAGS_H_

#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/access_token.h"
#include "services/common/grpc_server.h"
#include "services/common/service_host.h"

// Flags every service binary shares. Only main.cc files link this target;
// libraries take Options structs.
ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(std::string, metrics_listen);
ABSL_DECLARE_FLAG(std::string, mysql_dsn);
ABSL_DECLARE_FLAG(std::string, token_key_file);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_client_ca);
ABSL_DECLARE_FLAG(std::string, peer_tls_ca);
ABSL_DECLARE_FLAG(std::string, peer_tls_cert);
ABSL_DECLARE_FLAG(std::string, peer_tls_key);
ABSL_DECLARE_FLAG(std::string, peer_tls_server_name);
ABSL_DECLARE_FLAG(bool, reflection);
ABSL_DECLARE_FLAG(std::string, log_level);
ABSL_DECLARE_FLAG(absl::Duration, drain_grace);

namespace im {

// ServerOptions from the flags; `default_listen` applies when --listen is
// empty.
ServerOptions ServerOptionsFromFlags(const std::string& name,
                                     const std::string& default_listen);

// Everything RunService needs from the shared flags: ServerOptionsFromFlags,
// --drain_grace, --metrics_listen, and FlagSummary() as the start-up config.
ServiceHostOptions ServiceHostOptionsFromFlags(
    const std::string& name, const std::string& default_listen);

// The access-token keys from --token_key_file (required).
// INVALID_ARGUMENT when the flag is empty; TokenCodec::FromKeyFile's errors
// otherwise.
absl::StatusOr<std::unique_ptr<TokenCodec>> TokenCodecFromFlags();

// TLS settings for calls to other services (--peer_tls_*).
TlsOptions PeerTlsOptionsFromFlags();

// Sets spdlog's level and pattern from --log_level.
void ConfigureLoggingFromFlags();

// "--name=value ..." for every project flag of this binary (Abseil's own
// flags left out), sorted, with passwords in URLs (--mysql_dsn) masked.
// For the start-up log line.
std::string FlagSummary();

}  // namespace im

#endif  // IM_SERVICES_COMMON_SERVER_FLAGS_H_
