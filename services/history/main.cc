// The history service binary: flags from //services/common:server_flags
// plus the peer addresses below; defaults as in CONVENTIONS.md.

#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "services/common/server_flags.h"
#include "services/common/service_host.h"
#include "im/history/v1/history.grpc.pb.h"

ABSL_FLAG(std::string, auth_addr, "127.0.0.1:50051",
          "host:port of the auth service");
ABSL_FLAG(std::string, message_addr, "127.0.0.1:50053",
          "host:port of the message service");

namespace im {
namespace {

absl::StatusOr<std::unique_ptr<HostedService>> BuildHistoryService() {
  auto bundle = std::make_unique<ServiceBundle>();
  // Loaded up front so that a bad key file fails the start, not a call.
  absl::StatusOr<std::unique_ptr<TokenCodec>> tokens = TokenCodecFromFlags();
  if (!tokens.ok()) return tokens.status();
  bundle->Own(*std::move(tokens));
  // Every RPC answers UNIMPLEMENTED until the MySQL stores land
  // (HistoryServiceImpl needs a ConversationReader).
  bundle->Serve(
      bundle->Own(std::make_unique<history::v1::HistoryService::Service>()));
  return bundle;
}

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  im::ConfigureLoggingFromFlags();
  return im::RunService(im::ServiceHostOptionsFromFlags(
                            "im.history.v1.HistoryService", "127.0.0.1:50054"),
                        im::BuildHistoryService);
}
