// healthcheck: asks a gRPC server for its grpc.health.v1 status (the
// project's stand-in for grpcurl/grpc_health_probe, which Debian lacks).
//
//   healthcheck --addr=127.0.0.1:50051 [--service=im.auth.v1.AuthService]
//               [--wait=30s] [--timeout=2s] [--tls_ca=... --tls_cert=...]
//
// Prints the status and exits 0 when SERVING, 1 when not (after --wait,
// retrying every 200 ms), 2 on bad flags.

#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "services/common/grpc_server.h"
#include "services/common/health_probe.h"

ABSL_FLAG(std::string, addr, "", "host:port of the server (required)");
ABSL_FLAG(std::string, service, "",
          "Service name to check; empty checks the whole server");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(2),
          "Deadline of each health call");
ABSL_FLAG(absl::Duration, wait, absl::ZeroDuration(),
          "Keep retrying until SERVING or this long has passed");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA of the server (empty = plaintext)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mTLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM key for --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "Expected server name when it differs from --addr's host");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Exit 0 when a gRPC server reports SERVING via grpc.health.v1.");
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_addr);
  if (address.empty()) {
    std::cerr << "healthcheck: --addr is required\n";
    return 2;
  }
  im::TlsOptions tls;
  tls.ca_file = absl::GetFlag(FLAGS_tls_ca);
  tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  tls.key_file = absl::GetFlag(FLAGS_tls_key);
  tls.server_name_override = absl::GetFlag(FLAGS_tls_server_name);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      im::MakeChannel(address, tls);
  if (!channel.ok()) {
    std::cerr << "healthcheck: " << channel.status() << "\n";
    return 2;
  }

  const std::string service = absl::GetFlag(FLAGS_service);
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_wait);
  while (true) {
    absl::StatusOr<im::HealthStatus> status =
        im::CheckHealth(*channel, service, absl::GetFlag(FLAGS_timeout));
    if (status.ok() && *status == im::HealthStatus::kServing) {
      std::cout << address << " SERVING\n";
      return 0;
    }
    if (absl::Now() >= give_up) {
      std::cout << address << " "
                << (status.ok() ? im::HealthStatusName(*status)
                                : status.status().ToString())
                << "\n";
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}
