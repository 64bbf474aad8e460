#ifndef IM_SERVICES_AUTH_AUTH_SERVICE_H_
#define IM_SERVICES_AUTH_AUTH_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "services/auth/accounts.h"
#include "services/auth/password_hasher.h"
#include "services/auth/revocation_feed.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/worker_pool.h"
#include "storage/session_store.h"
#include "storage/user_store.h"

namespace im::auth {

// im.auth.v1.AuthService on gRPC's callback API. No gRPC thread ever
// blocks: handlers authenticate (in memory) and hand the work to one of two
// bounded pools, then finish the call from there:
//   - the credential pool (argon2id: Register, Login) with as many threads
//     as cores, so a burst of logins queues there (and is refused with
//     RESOURCE_EXHAUSTED beyond credential_queue) instead of starving
//     everything else;
//   - the store pool (every other database call).
// WatchRevocations streams are reactors fed by the RevocationFeed.
class AuthServiceImpl final : public v1::AuthService::CallbackService {
 public:
  struct Options {
    Accounts::Options accounts;
    PasswordHasher::Options password_hashing;
    RevocationFeed::Options revocations;
    int credential_threads = 2;
    size_t credential_queue = 64;
    int store_threads = 8;
    size_t store_queue = 4096;
    // Peers (IP addresses) allowed to name the client's address in
    // `x-forwarded-for` (the grpc-web gateway); for throttling only.
    std::vector<std::string> trusted_proxies;
    // Revoked sessions a WatchRevocations stream may have queued before it
    // is ended with RESOURCE_EXHAUSTED (the watcher reconnects and gets a
    // snapshot).
    size_t max_watch_backlog = 100000;
  };
  using Clock = std::function<absl::Time()>;

  // Stores and codec must outlive the service. Fails if the password
  // hasher refuses the options or the revocation snapshot cannot be read.
  static absl::StatusOr<std::unique_ptr<AuthServiceImpl>> Create(
      const Options& options, storage::UserStore* users,
      storage::SessionStore* sessions, const TokenCodec* codec,
      Clock clock = absl::Now);

  // Call after the gRPC server has shut down (in-flight calls finish on the
  // pools, which the destructor joins).
  ~AuthServiceImpl() override;

  // Ends every WatchRevocations stream with UNAVAILABLE so watchers move to
  // another auth node; part of draining before shutdown.
  void Drain();

  // The revocations this node knows (what its own Authenticator checks).
  const RevocationSet& revocations() const { return revocations_; }
  Accounts& accounts() { return *accounts_; }

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) override;
  grpc::ServerUnaryReactor* Login(grpc::CallbackServerContext* context,
                                  const v1::LoginRequest* request,
                                  v1::LoginResponse* response) override;
  grpc::ServerUnaryReactor* Refresh(grpc::CallbackServerContext* context,
                                    const v1::RefreshRequest* request,
                                    v1::RefreshResponse* response) override;
  grpc::ServerUnaryReactor* Logout(grpc::CallbackServerContext* context,
                                   const v1::LogoutRequest* request,
                                   v1::LogoutResponse* response) override;
  grpc::ServerUnaryReactor* LogoutAll(grpc::CallbackServerContext* context,
                                      const v1::LogoutAllRequest* request,
                                      v1::LogoutAllResponse* response) override;
  grpc::ServerUnaryReactor* ListSessions(
      grpc::CallbackServerContext* context,
      const v1::ListSessionsRequest* request,
      v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* WhoAmI(grpc::CallbackServerContext* context,
                                   const v1::WhoAmIRequest* request,
                                   v1::WhoAmIResponse* response) override;
  grpc::ServerUnaryReactor* LookupUsers(
      grpc::CallbackServerContext* context,
      const v1::LookupUsersRequest* request,
      v1::LookupUsersResponse* response) override;
  grpc::ServerUnaryReactor* Validate(grpc::CallbackServerContext* context,
                                     const v1::ValidateRequest* request,
                                     v1::ValidateResponse* response) override;
  grpc::ServerWriteReactor<v1::RevocationBatch>* WatchRevocations(
      grpc::CallbackServerContext* context,
      const v1::WatchRevocationsRequest* request) override;
  grpc::ServerUnaryReactor* CreateServiceAccount(
      grpc::CallbackServerContext* context,
      const v1::CreateServiceAccountRequest* request,
      v1::CreateServiceAccountResponse* response) override;
  grpc::ServerUnaryReactor* ListServiceAccounts(
      grpc::CallbackServerContext* context,
      const v1::ListServiceAccountsRequest* request,
      v1::ListServiceAccountsResponse* response) override;
  grpc::ServerUnaryReactor* RevokeServiceAccount(
      grpc::CallbackServerContext* context,
      const v1::RevokeServiceAccountRequest* request,
      v1::RevokeServiceAccountResponse* response) override;
  grpc::ServerUnaryReactor* ExchangeApiKey(
      grpc::CallbackServerContext* context,
      const v1::ExchangeApiKeyRequest* request,
      v1::ExchangeApiKeyResponse* response) override;

 private:
  AuthServiceImpl(const Options& options, const TokenCodec* codec, Clock clock);

  // Runs `work` (returning absl::StatusOr<Response>) on `pool` and
  // finishes the call with its result.
  template <typename Response, typename Work>
  grpc::ServerUnaryReactor* RunOnPool(grpc::CallbackServerContext* context,
                                      WorkerPool& pool, Response* response,
                                      Work work);
  // Authenticates the call, then runs work(caller) on the store pool.
  template <typename Response, typename Work>
  grpc::ServerUnaryReactor* RunAuthenticated(
      grpc::CallbackServerContext* context, Response* response, Work work);

  // The throttling key for the caller's address.
  std::string PeerKey(const grpc::CallbackServerContext& context) const;

  const Options options_;
  const absl::flat_hash_set<std::string> trusted_proxies_;
  RevocationSet revocations_;
  Authenticator authenticator_;
  std::unique_ptr<PasswordHasher> hasher_;
  std::unique_ptr<RevocationFeed> feed_;
  std::unique_ptr<Accounts> accounts_;
  // Declared last: destroyed (joined) first, while everything their tasks
  // use is still alive.
  std::unique_ptr<WorkerPool> store_pool_;
  std::unique_ptr<WorkerPool> credential_pool_;
};

}  // namespace im::auth

#endif  // IM_SERVICES_AUTH_AUTH_SERVICE_H_
