#ifndef IM_TESTS_SUPPORT_SERVICE_STACK_H_
#define IM_TESTS_SUPPORT_SERVICE_STACK_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clients/cpp/im_client.h"
#include "services/auth/auth_service.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/common/revocation_watcher.h"
#include "services/history/history_service.h"
#include "services/message/message_service.h"
#include "services/presence/presence_lease_client.h"
#include "services/presence/presence_service.h"
#include "storage/database.h"
#include "tests/support/tcp_proxy.h"

// The four services in one process over one database, wired like the
// binaries (revocation feed from auth, presence leases from message,
// history forwarding MarkRead to message), each on its own loopback port,
// for end-to-end tests of clients. Clients reach message through a
// TcpProxy so tests can cut their connections.

namespace im::testing {

struct ServiceStackOptions {
  absl::Duration access_token_ttl = absl::Minutes(15);
  std::vector<std::string> admin_usernames;
  message::MessageServiceOptions message = DefaultMessageOptions();

  // Generous limits, small replay bound stays as configured.
  static message::MessageServiceOptions DefaultMessageOptions();
};

class ServiceStack {
 public:
  // Null after failing the current test (database or a server did not
  // start). `db` is the stores (e.g. MakeMysqlTestDatabase()).
  static std::unique_ptr<ServiceStack> Start(
      std::unique_ptr<storage::Database> db,
      const ServiceStackOptions& options = {});
  ~ServiceStack();

  // Addresses for clients: message through the proxy.
  client::Endpoints endpoints() const;
  TcpProxy& message_proxy() { return *message_proxy_; }
  storage::Database& db() { return *db_; }
  message::MessageServiceImpl& message_service() { return *message_; }
  const std::string& message_address() const { return message_server_->address(); }

  // Drains the message service (acks of queued sends go out, streams end
  // UNAVAILABLE) and stops it; StartMessage brings a new one up on the same
  // port over the same database. Restart = both.
  void StopMessage();
  bool StartMessage();
  bool RestartMessage();

 private:
  ServiceStack() = default;
  bool StartAll(const ServiceStackOptions& options);

  ServiceStackOptions options_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<TokenCodec> codec_;
  std::unique_ptr<InternalTokenSource> internal_tokens_;

  std::unique_ptr<auth::AuthServiceImpl> auth_;
  std::unique_ptr<GrpcServer> auth_server_;

  RevocationSet revocations_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<RevocationWatcher> watcher_;

  std::unique_ptr<presence::PresenceServiceImpl> presence_;
  std::unique_ptr<GrpcServer> presence_server_;
  std::unique_ptr<presence::PresenceLeaseClient> lease_client_;

  int message_port_ = 0;
  std::unique_ptr<message::MessageServiceImpl> message_;
  std::unique_ptr<GrpcServer> message_server_;
  std::unique_ptr<TcpProxy> message_proxy_;

  std::unique_ptr<history::HistoryServiceImpl> history_;
  std::unique_ptr<GrpcServer> history_server_;
};

}  // namespace im::testing

#endif  // IM_TESTS_SUPPORT_SERVICE_STACK_H_
