#ifndef IM_SERVICES_COMMON_SERVER_FLAGS_H_
#define IM_SERVICES_COMMON_SERVER_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"
#include "absl/time/time.h"
#include "services/common/grpc_server.h"

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
ABSL_DECLARE_FLAG(std::string, log_level);
ABSL_DECLARE_FLAG(absl::Duration, drain_grace);

namespace im {

// ServerOptions from the flags; `default_listen` applies when --listen is
// empty.
ServerOptions ServerOptionsFromFlags(const std::string& name,
                                     const std::string& default_listen);

// TLS settings for calls to other services (--peer_tls_*).
TlsOptions PeerTlsOptionsFromFlags();

// Sets spdlog's level and pattern from --log_level.
void ConfigureLoggingFromFlags();

}  // namespace im

#endif  // IM_SERVICES_COMMON_SERVER_FLAGS_H_
