#include "services/common/server_flags.h"

#include "absl/flags/flag.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "",
          "host:port for the gRPC listener (port 0 = any free port)");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for Prometheus /metrics (empty = no metrics endpoint)");
ABSL_FLAG(std::string, mysql_dsn, "mysql://im:im@127.0.0.1:3306/im",
          "MySQL/MariaDB to use: mysql://user:password@host:port/db?pool=N");
ABSL_FLAG(std::string, token_key_file, "",
          "File with the access-token HMAC keys (\"<id> <base64>\" per "
          "line; the first signs). Shared by all services.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate for the listener (empty = plaintext)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA: when set, clients must present a certificate it signed "
          "(mTLS)");
ABSL_FLAG(std::string, peer_tls_ca, "",
          "PEM CA of the other services (empty = plaintext to peers)");
ABSL_FLAG(std::string, peer_tls_cert, "",
          "PEM client certificate for mTLS to the other services");
ABSL_FLAG(std::string, peer_tls_key, "", "PEM key for --peer_tls_cert");
ABSL_FLAG(std::string, peer_tls_server_name, "",
          "Expected server name in the peers' certificates");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error or off");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(5),
          "On SIGTERM: how long in-flight calls may finish before they are "
          "cancelled");

namespace im {

ServerOptions ServerOptionsFromFlags(const std::string& name,
                                     const std::string& default_listen) {
  ServerOptions options;
  options.name = name;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  if (options.listen_address.empty()) options.listen_address = default_listen;
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  return options;
}

TlsOptions PeerTlsOptionsFromFlags() {
  TlsOptions tls;
  tls.ca_file = absl::GetFlag(FLAGS_peer_tls_ca);
  tls.cert_file = absl::GetFlag(FLAGS_peer_tls_cert);
  tls.key_file = absl::GetFlag(FLAGS_peer_tls_key);
  tls.server_name_override = absl::GetFlag(FLAGS_peer_tls_server_name);
  return tls;
}

void ConfigureLoggingFromFlags() {
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
}

}  // namespace im
