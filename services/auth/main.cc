// The auth service binary: flags from //services/common:server_flags
// plus the peer addresses below; defaults as in CONVENTIONS.md.

#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "services/common/server_flags.h"
#include "services/common/service_host.h"

namespace im {
namespace {

absl::StatusOr<std::unique_ptr<HostedService>> BuildAuthService() {
  auto bundle = std::make_unique<ServiceBundle>();
  // Loaded up front so that a bad key file fails the start, not a call.
  absl::StatusOr<std::unique_ptr<TokenCodec>> tokens = TokenCodecFromFlags();
  if (!tokens.ok()) return tokens.status();
  bundle->Own(*std::move(tokens));
  // Wired to AuthServiceImpl once the MySQL stores land.
  bundle->Serve(bundle->Own(std::make_unique<auth::v1::AuthService::Service>()));
  return bundle;
}

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  im::ConfigureLoggingFromFlags();
  return im::RunService(im::ServiceHostOptionsFromFlags(
                            "im.auth.v1.AuthService", "127.0.0.1:50051"),
                        im::BuildAuthService);
}
