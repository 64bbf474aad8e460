// The message service binary: flags from //services/common:server_flags
// plus the peer addresses below; defaults as in CONVENTIONS.md.

#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "services/common/server_flags.h"
#include "services/common/service_host.h"
#include "im/message/v1/message.grpc.pb.h"

ABSL_FLAG(std::string, auth_addr, "127.0.0.1:50051",
          "host:port of the auth service");
ABSL_FLAG(std::string, presence_addr, "127.0.0.1:50052",
          "host:port of the presence service");

namespace im {
namespace {

absl::StatusOr<std::unique_ptr<HostedService>> BuildMessageService() {
  auto bundle = std::make_unique<ServiceBundle>();
  // Loaded up front so that a bad key file fails the start, not a call.
  absl::StatusOr<std::unique_ptr<TokenCodec>> tokens = TokenCodecFromFlags();
  if (!tokens.ok()) return tokens.status();
  bundle->Own(*std::move(tokens));
  // The message pipeline (//services/message:message_lib) needs the MySQL
  // stores; until //storage/mysql lands the binary serves the generated
  // service, which answers UNIMPLEMENTED.
  bundle->Serve(bundle->Own(
      std::make_unique<message::v1::MessageService::CallbackService>()));
  return bundle;
}

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  im::ConfigureLoggingFromFlags();
  return im::RunService(im::ServiceHostOptionsFromFlags(
                            "im.message.v1.MessageService", "127.0.0.1:50053"),
                        im::BuildMessageService);
}
