#include "services/common/server_flags.h"

#include <algorithm>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
ABSL_FLAG(bool, reflection, false,
          "Serve gRPC server reflection (for grpcurl and similar tools); "
          "off by default because it publishes the whole API surface");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error or off");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(5),
          "On SIGTERM: how long in-flight calls may finish before they are "
          "cancelled");

namespace im {
namespace {

// "scheme://user:secret@host" -> "scheme://user:***@host".
std::string MaskUrlPassword(std::string value) {
  const size_t scheme_end = value.find("://");
  if (scheme_end == std::string::npos) return value;
  const size_t at = value.find('@', scheme_end + 3);
  const size_t colon = value.find(':', scheme_end + 3);
  if (at == std::string::npos || colon == std::string::npos || colon > at) {
    return value;
  }
  return value.replace(colon + 1, at - colon - 1, "***");
}

}  // namespace

ServerOptions ServerOptionsFromFlags(const std::string& name,
                                     const std::string& default_listen) {
  ServerOptions options;
  options.name = name;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  if (options.listen_address.empty()) options.listen_address = default_listen;
  options.reflection = absl::GetFlag(FLAGS_reflection);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  return options;
}

ServiceHostOptions ServiceHostOptionsFromFlags(
    const std::string& name, const std::string& default_listen) {
  ServiceHostOptions options;
  options.server = ServerOptionsFromFlags(name, default_listen);
  options.drain_grace = absl::GetFlag(FLAGS_drain_grace);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.startup_config = FlagSummary();
  return options;
}

absl::StatusOr<std::unique_ptr<TokenCodec>> TokenCodecFromFlags() {
  const std::string path = absl::GetFlag(FLAGS_token_key_file);
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "--token_key_file is required (the access-token keys shared by all "
        "services)");
  }
  return TokenCodec::FromKeyFile(path);
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

std::string FlagSummary() {
  std::vector<std::string> entries;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "absl/")) continue;
    entries.push_back(
        absl::StrCat("--", name, "=", MaskUrlPassword(flag->CurrentValue())));
  }
  std::sort(entries.begin(), entries.end());
  return absl::StrJoin(entries, " ");
}

}  // namespace im
