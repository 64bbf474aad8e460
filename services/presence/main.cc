// The presence service binary: flags from //services/common:server_flags
// plus the peer addresses below; defaults as in CONVENTIONS.md.

#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/common/server_flags.h"
#include "services/common/service_host.h"

ABSL_FLAG(std::string, auth_addr, "127.0.0.1:50051",
          "host:port of the auth service");

namespace im {
namespace {

absl::StatusOr<std::unique_ptr<HostedService>> BuildPresenceService() {
  auto bundle = std::make_unique<ServiceBundle>();
  // Loaded up front so that a bad key file fails the start, not a call.
  absl::StatusOr<std::unique_ptr<TokenCodec>> tokens = TokenCodecFromFlags();
  if (!tokens.ok()) return tokens.status();
  bundle->Own(*std::move(tokens));
  // Wired to presence::PresenceServiceImpl once the MySQL stores land.
  bundle->Serve(bundle->Own(
      std::make_unique<presence::v1::PresenceService::Service>()));
  return bundle;
}

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  im::ConfigureLoggingFromFlags();
  return im::RunService(
      im::ServiceHostOptionsFromFlags("im.presence.v1.PresenceService",
                                      "127.0.0.1:50052"),
      im::BuildPresenceService);
}
