// The history service binary: flags from //services/common:server_flags
// and :database_flags plus the flags below; defaults as in CONVENTIONS.md.

#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "im/message/v1/message.grpc.pb.h"
#include "observability/server_metrics.h"
#include "services/common/database_flags.h"
#include "services/common/grpc_server.h"
#include "services/common/server_flags.h"
#include "services/common/service_authentication.h"
#include "services/common/service_host.h"
#include "services/history/history_service.h"

ABSL_FLAG(std::string, auth_addr, "127.0.0.1:50051",
          "host:port of the auth service (revocation feed)");
ABSL_FLAG(std::string, message_addr, "127.0.0.1:50053",
          "host:port of the message service (MarkRead is forwarded there)");
ABSL_FLAG(absl::Duration, mark_read_timeout, absl::Seconds(5),
          "Deadline of a forwarded MarkRead when the caller's is later");
ABSL_FLAG(int, max_sync_rows_scanned, 1000,
          "Memberships one Sync page examines at most");

namespace im {
namespace {

absl::StatusOr<history::HistoryServiceOptions> OptionsFromFlags() {
  history::HistoryServiceOptions options;
  options.mark_read_timeout = absl::GetFlag(FLAGS_mark_read_timeout);
  const int scanned = absl::GetFlag(FLAGS_max_sync_rows_scanned);
  if (scanned < 1) {
    return absl::InvalidArgumentError("--max_sync_rows_scanned must be >= 1");
  }
  options.reads.max_sync_rows_scanned = static_cast<uint32_t>(scanned);
  return options;
}

absl::StatusOr<std::unique_ptr<HostedService>> BuildHistoryService(
    observability::ServerMetrics& metrics) {
  absl::StatusOr<history::HistoryServiceOptions> options = OptionsFromFlags();
  if (!options.ok()) return options.status();

  auto bundle = std::make_unique<ServiceBundle>();
  // Loaded up front so that a bad key file fails the start, not a call.
  absl::StatusOr<std::unique_ptr<TokenCodec>> tokens = TokenCodecFromFlags();
  if (!tokens.ok()) return tokens.status();
  const TokenCodec* codec = bundle->Own(*std::move(tokens));

  absl::StatusOr<storage::MysqlDatabase*> db =
      OpenDatabaseFromFlags(*bundle, metrics);
  if (!db.ok()) return db.status();

  // Revocations from auth: a revoked session's calls fail at once.
  const TlsOptions peer_tls = PeerTlsOptionsFromFlags();
  absl::StatusOr<ServiceAuthentication> auth = StartServiceAuthentication(
      *bundle, codec, absl::GetFlag(FLAGS_auth_addr), peer_tls);
  if (!auth.ok()) return auth.status();

  absl::StatusOr<std::shared_ptr<grpc::Channel>> message_channel =
      MakeChannel(absl::GetFlag(FLAGS_message_addr), peer_tls);
  if (!message_channel.ok()) return message_channel.status();
  absl::StatusOr<std::unique_ptr<history::HistoryServiceImpl>> service =
      history::HistoryServiceImpl::Create(
          *options, (*db)->reader(), auth->authenticator,
          message::v1::MessageService::NewStub(*std::move(message_channel)));
  if (!service.ok()) return service.status();
  bundle->Serve(bundle->Own(*std::move(service)));
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
