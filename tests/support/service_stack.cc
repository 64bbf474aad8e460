#include "tests/support/service_stack.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace im::testing {

message::MessageServiceOptions ServiceStackOptions::DefaultMessageOptions() {
  message::MessageServiceOptions options;
  options.send_rate = message::RateOptions(0, 1);  // unlimited
  options.typing_rate = message::RateOptions(0, 1);
  options.worker_threads = 4;
  options.writer.shards = 2;
  return options;
}

namespace {

template <typename T>
bool Check(const absl::StatusOr<T>& result, const char* what) {
  if (result.ok()) return true;
  ADD_FAILURE() << what << ": " << result.status();
  return false;
}

absl::StatusOr<std::unique_ptr<GrpcServer>> Serve(const std::string& name,
                                                  grpc::Service* service,
                                                  int port = 0) {
  ServerOptions options;
  options.name = name;
  options.listen_address = absl::StrCat("127.0.0.1:", port);
  return GrpcServer::Start(options, {service});
}

}  // namespace

std::unique_ptr<ServiceStack> ServiceStack::Start(
    std::unique_ptr<storage::Database> db, const ServiceStackOptions& options) {
  if (db == nullptr) return nullptr;
  std::unique_ptr<ServiceStack> stack(new ServiceStack());
  stack->db_ = std::move(db);
  if (!stack->StartAll(options)) return nullptr;
  return stack;
}

bool ServiceStack::StartAll(const ServiceStackOptions& options) {
  options_ = options;
  TokenKey key;
  key.id = 1;
  key.secret = std::string(32, 's');
  absl::StatusOr<std::unique_ptr<TokenCodec>> codec = TokenCodec::Create({key});
  if (!Check(codec, "token codec")) return false;
  codec_ = *std::move(codec);
  internal_tokens_ = std::make_unique<InternalTokenSource>(codec_.get());

  // auth, with the cheapest password hashing the OWASP floor allows.
  auth::AuthServiceImpl::Options auth_options;
  auth_options.accounts.access_token_ttl = options.access_token_ttl;
  auth_options.accounts.admin_usernames = options.admin_usernames;
  auth_options.password_hashing.opslimit =
      auth::PasswordHasher::kOwaspMinOpslimit;
  auth_options.password_hashing.memlimit_bytes =
      auth::PasswordHasher::kOwaspMinMemlimitBytes;
  auth_options.revocations.retention = options.access_token_ttl + absl::Minutes(1);
  absl::StatusOr<std::unique_ptr<auth::AuthServiceImpl>> auth =
      auth::AuthServiceImpl::Create(auth_options, db_->users(),
                                    db_->sessions(), codec_.get());
  if (!Check(auth, "auth service")) return false;
  auth_ = *std::move(auth);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      Serve("im.auth.v1.AuthService", auth_.get());
  if (!Check(server, "auth server")) return false;
  auth_server_ = *std::move(server);

  // The other services verify tokens themselves and follow auth's
  // revocations, as the binaries do.
  authenticator_ = std::make_unique<Authenticator>(codec_.get(), &revocations_);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> auth_channel =
      MakeChannel(auth_server_->address(), TlsOptions());
  if (!Check(auth_channel, "auth channel")) return false;
  RevocationWatcher::Options watcher_options;
  watcher_options.retention = options.access_token_ttl + absl::Minutes(1);
  absl::StatusOr<std::unique_ptr<RevocationWatcher>> watcher =
      RevocationWatcher::Create(watcher_options, *auth_channel, &revocations_,
                                internal_tokens_.get());
  if (!Check(watcher, "revocation watcher")) return false;
  watcher_ = *std::move(watcher);
  if (!watcher_->WaitUntilConnected(absl::Seconds(10))) {
    ADD_FAILURE() << "revocation watcher did not connect";
    return false;
  }

  presence::PresenceServiceImpl::Options presence_options;
  absl::StatusOr<std::unique_ptr<presence::PresenceServiceImpl>> presence =
      presence::PresenceServiceImpl::Create(presence_options,
                                            authenticator_.get(), db_->users(),
                                            db_->reader(), &revocations_);
  if (!Check(presence, "presence service")) return false;
  presence_ = *std::move(presence);
  server = Serve("im.presence.v1.PresenceService", presence_.get());
  if (!Check(server, "presence server")) return false;
  presence_server_ = *std::move(server);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> presence_channel =
      MakeChannel(presence_server_->address(), TlsOptions());
  if (!Check(presence_channel, "presence channel")) return false;
  presence::PresenceLeaseClient::Options lease_options;
  lease_options.node_id = "message-stack";
  absl::StatusOr<std::unique_ptr<presence::PresenceLeaseClient>> leases =
      presence::PresenceLeaseClient::Create(
          lease_options, *presence_channel,
          [tokens = internal_tokens_.get()] { return tokens->Token(); });
  if (!Check(leases, "presence lease client")) return false;
  lease_client_ = *std::move(leases);

  if (!StartMessage()) return false;
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start(message_server_->address());
  if (!Check(proxy, "message proxy")) return false;
  message_proxy_ = *std::move(proxy);

  // History forwards MarkRead straight to message (not through the proxy).
  absl::StatusOr<std::shared_ptr<grpc::Channel>> message_channel =
      MakeChannel(message_server_->address(), TlsOptions());
  if (!Check(message_channel, "message channel")) return false;
  absl::StatusOr<std::unique_ptr<history::HistoryServiceImpl>> history =
      history::HistoryServiceImpl::Create(
          history::HistoryServiceOptions(), db_->reader(),
          authenticator_.get(),
          message::v1::MessageService::NewStub(*message_channel));
  if (!Check(history, "history service")) return false;
  history_ = *std::move(history);
  server = Serve("im.history.v1.HistoryService", history_.get());
  if (!Check(server, "history server")) return false;
  history_server_ = *std::move(server);
  return true;
}

bool ServiceStack::StartMessage() {
  message::MessageServiceImpl::Dependencies deps;
  deps.log = db_->log();
  deps.reader = db_->reader();
  deps.read_markers = db_->read_markers();
  deps.authenticator = authenticator_.get();
  deps.revocations = &revocations_;
  deps.presence = lease_client_.get();
  absl::StatusOr<std::unique_ptr<message::MessageServiceImpl>> message =
      message::MessageServiceImpl::Create(options_.message, deps);
  if (!Check(message, "message service")) return false;
  message_ = *std::move(message);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      Serve("im.message.v1.MessageService", message_.get(), message_port_);
  if (!Check(server, "message server")) return false;
  message_server_ = *std::move(server);
  message_port_ = message_server_->port();
  return true;
}

void ServiceStack::StopMessage() {
  if (message_ != nullptr) message_->Drain();
  if (message_server_ != nullptr) message_server_->Shutdown(absl::Seconds(2));
  message_server_.reset();
  message_.reset();
}

bool ServiceStack::RestartMessage() {
  StopMessage();
  return StartMessage();
}

client::Endpoints ServiceStack::endpoints() const {
  client::Endpoints endpoints;
  endpoints.auth = auth_server_->address();
  endpoints.message = message_proxy_->address();
  endpoints.history = history_server_->address();
  endpoints.presence = presence_server_->address();
  return endpoints;
}

ServiceStack::~ServiceStack() {
  // Clients first lose message (their streams end), then the rest stops in
  // the reverse order of the start.
  if (history_server_ != nullptr) history_server_->Shutdown(absl::Seconds(1));
  StopMessage();
  message_proxy_.reset();
  if (lease_client_ != nullptr) lease_client_->Shutdown(absl::Seconds(1));
  if (presence_ != nullptr) presence_->Shutdown();
  if (presence_server_ != nullptr) presence_server_->Shutdown(absl::Seconds(1));
  if (watcher_ != nullptr) watcher_->Stop();
  if (auth_ != nullptr) auth_->Drain();
  if (auth_server_ != nullptr) auth_server_->Shutdown(absl::Seconds(1));
  history_.reset();
  history_server_.reset();
  lease_client_.reset();
  presence_.reset();
  presence_server_.reset();
  auth_.reset();
  auth_server_.reset();
}

}  // namespace im::testing
