// End to end over real gRPC: auth in-process on port 0, and a second tiny
// service that authenticates calls with its own Authenticator, fed by a
// RevocationWatcher. A session revoked at auth must be refused by the
// second service within a second; also over mTLS, and across an auth
// restart (the watcher reconnects and catches up from the snapshot).

#include <grpcpp/grpcpp.h>
#include <sodium.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "services/auth/auth_service.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/common/revocation_watcher.h"
#include "services/common/status.h"
#include "storage/fake/fake_database.h"

namespace im::auth {
namespace {

// The "other service": WhoAmI answers with the caller its own
// Authenticator sees.
class OtherService final : public v1::AuthService::Service {
 public:
  explicit OtherService(const Authenticator* authenticator)
      : authenticator_(authenticator) {}

  grpc::Status WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest*,
                      v1::WhoAmIResponse* response) override {
    absl::StatusOr<Caller> caller = authenticator_->Authenticate(*context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    response->mutable_user()->set_user_id(caller->user_id);
    response->set_session_id(caller->session_id);
    return grpc::Status::OK;
  }

 private:
  const Authenticator* authenticator_;
};

// Remembers when each session's revocation reached the set.
class RevocationClock {
 public:
  void Record(uint64_t session_id) {
    absl::MutexLock lock(&mu_);
    seen_[session_id] = absl::Now();
  }
  // When `session_id` arrived, waiting up to `timeout`.
  std::optional<absl::Time> WaitFor(uint64_t session_id,
                                    absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return seen_.contains(session_id);
    };
    mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
    auto it = seen_.find(session_id);
    if (it == seen_.end()) return std::nullopt;
    return it->second;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, absl::Time> seen_ ABSL_GUARDED_BY(mu_);
};

class RevocationEndToEndTest : public ::testing::TestWithParam<bool> {
 protected:
  bool use_mtls() const { return GetParam(); }

  void SetUp() override {
    auto codec = TokenCodec::Create({TokenKey{7, std::string(32, 'e')}});
    ASSERT_TRUE(codec.ok());
    codec_ = *std::move(codec);
    if (use_mtls()) {
      certs_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs");
      const std::string command = absl::StrCat(
          "bash '", std::getenv("TEST_SRCDIR"),
          "/im/scripts/gen-dev-certs.sh' '", certs_, "' >/dev/null");
      ASSERT_EQ(std::system(command.c_str()), 0);
      server_tls_.cert_file = certs_ + "/server.crt";
      server_tls_.key_file = certs_ + "/server.key";
      server_tls_.ca_file = certs_ + "/ca.crt";
      client_tls_.ca_file = certs_ + "/ca.crt";
      client_tls_.cert_file = certs_ + "/client.crt";
      client_tls_.key_file = certs_ + "/client.key";
      client_tls_.server_name_override = "localhost";
    }
    StartAuth("127.0.0.1:0");

    // The other service and its watcher.
    other_auth_ = std::make_unique<Authenticator>(codec_.get(), &other_set_);
    other_service_ = std::make_unique<OtherService>(other_auth_.get());
    ServerOptions other_options;
    other_options.tls = server_tls_;
    auto other = GrpcServer::Start(other_options, {other_service_.get()});
    ASSERT_TRUE(other.ok()) << other.status();
    other_server_ = *std::move(other);
    other_set_.AddListener([this](uint64_t session_id, uint64_t) {
      arrivals_.Record(session_id);
    });
    internal_tokens_ = std::make_unique<InternalTokenSource>(codec_.get());
    auto channel = MakeChannel(auth_address_, client_tls_);
    ASSERT_TRUE(channel.ok());
    RevocationWatcher::Options watch;
    watch.initial_backoff = absl::Milliseconds(20);
    watch.max_backoff = absl::Milliseconds(200);
    auto watcher = RevocationWatcher::Create(watch, *channel, &other_set_,
                                             internal_tokens_.get());
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    watcher_ = *std::move(watcher);
    ASSERT_TRUE(watcher_->WaitUntilConnected(absl::Seconds(10)));
  }

  void TearDown() override {
    if (watcher_) watcher_->Stop();
    if (other_server_) other_server_->Shutdown(absl::ZeroDuration());
    StopAuth();
  }

  void StartAuth(const std::string& address) {
    AuthServiceImpl::Options options;
    options.password_hashing.opslimit = crypto_pwhash_OPSLIMIT_MIN;
    options.password_hashing.memlimit_bytes = crypto_pwhash_MEMLIMIT_MIN;
    options.revocations.poll_interval = absl::ZeroDuration();
    auto service = AuthServiceImpl::Create(options, db_.users(), db_.sessions(),
                                           codec_.get());
    ASSERT_TRUE(service.ok()) << service.status();
    auth_service_ = *std::move(service);
    ServerOptions server_options;
    server_options.listen_address = address;
    server_options.tls = server_tls_;
    auto server = GrpcServer::Start(server_options, {auth_service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    auth_server_ = *std::move(server);
    auth_address_ = absl::StrCat("127.0.0.1:", auth_server_->port());
    auto channel = MakeChannel(auth_address_, client_tls_);
    ASSERT_TRUE(channel.ok());
    auth_stub_ = v1::AuthService::NewStub(*channel);
  }

  void StopAuth() {
    if (auth_server_ == nullptr) return;
    auth_service_->Drain();
    auth_server_->Shutdown(absl::ZeroDuration());
    auth_server_.reset();
    auth_service_.reset();
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& token = "") {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    if (!token.empty()) AttachBearerToken(context.get(), token);
    return context;
  }

  v1::TokenPair RegisterAndLogin(const std::string& username) {
    v1::RegisterRequest reg;
    reg.set_username(username);
    reg.set_password("password123");
    v1::RegisterResponse registered;
    grpc::Status status =
        auth_stub_->Register(Context().get(), reg, &registered);
    EXPECT_TRUE(status.ok()) << status.error_message();
    v1::LoginRequest login;
    login.set_username(username);
    login.set_password("password123");
    v1::LoginResponse response;
    status = auth_stub_->Login(Context().get(), login, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.tokens();
  }

  grpc::Status OtherWhoAmI(const std::string& token) {
    auto channel = MakeChannel(
        absl::StrCat("127.0.0.1:", other_server_->port()), client_tls_);
    EXPECT_TRUE(channel.ok());
    auto stub = v1::AuthService::NewStub(*channel);
    v1::WhoAmIResponse response;
    return stub->WhoAmI(Context(token).get(), v1::WhoAmIRequest(), &response);
  }

  storage::FakeDatabase db_;
  std::unique_ptr<TokenCodec> codec_;
  std::string certs_;
  TlsOptions server_tls_;
  TlsOptions client_tls_;
  std::unique_ptr<AuthServiceImpl> auth_service_;
  std::unique_ptr<GrpcServer> auth_server_;
  std::string auth_address_;
  std::unique_ptr<v1::AuthService::Stub> auth_stub_;

  RevocationSet other_set_;
  RevocationClock arrivals_;
  std::unique_ptr<Authenticator> other_auth_;
  std::unique_ptr<OtherService> other_service_;
  std::unique_ptr<GrpcServer> other_server_;
  std::unique_ptr<InternalTokenSource> internal_tokens_;
  std::unique_ptr<RevocationWatcher> watcher_;
};

TEST_P(RevocationEndToEndTest,
       RevokedSessionIsRefusedByAnotherServiceWithinASecond) {
  v1::TokenPair alice = RegisterAndLogin("alice");
  v1::TokenPair bob = RegisterAndLogin("bob");
  ASSERT_TRUE(OtherWhoAmI(alice.access_token()).ok());
  ASSERT_TRUE(OtherWhoAmI(bob.access_token()).ok());

  const absl::Time revoked_at = absl::Now();
  v1::LogoutResponse out;
  ASSERT_TRUE(auth_stub_
                  ->Logout(Context(alice.access_token()).get(),
                           v1::LogoutRequest(), &out)
                  .ok());
  std::optional<absl::Time> arrived =
      arrivals_.WaitFor(alice.session_id(), absl::Seconds(5));
  ASSERT_TRUE(arrived.has_value()) << "revocation never reached the watcher";
  const absl::Duration propagation = *arrived - revoked_at;
  std::printf("revocation propagation (Logout call to watcher set%s): %s\n",
              use_mtls() ? ", mTLS" : "",
              absl::FormatDuration(propagation).c_str());
  // The message service must close streams within 2 s; the feed has to
  // deliver well inside that.
  EXPECT_LT(propagation, absl::Seconds(1));

  grpc::Status refused = OtherWhoAmI(alice.access_token());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(refused.error_message(), "session has been revoked");
  EXPECT_TRUE(OtherWhoAmI(bob.access_token()).ok());
}

TEST_P(RevocationEndToEndTest, WatcherReconnectsAndCatchesUpAfterAuthRestart) {
  v1::TokenPair alice = RegisterAndLogin("alice");
  const std::string address = absl::StrCat("127.0.0.1:", auth_server_->port());
  EXPECT_EQ(watcher_->snapshots_applied(), 1u);
  StopAuth();
  for (int i = 0; i < 500 && watcher_->connected(); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_FALSE(watcher_->connected());

  // Revoked while this watcher's auth was away (by another auth node).
  ASSERT_TRUE(db_.sessions()
                  ->RevokeSession(alice.user_id(), alice.session_id(),
                                  storage::RevokeReason::kAdmin, absl::Now())
                  .ok());
  EXPECT_TRUE(OtherWhoAmI(alice.access_token()).ok());  // not known yet

  StartAuth(address);
  ASSERT_TRUE(watcher_->WaitUntilConnected(absl::Seconds(10)));
  EXPECT_EQ(watcher_->snapshots_applied(), 2u);
  EXPECT_TRUE(other_set_.IsRevoked(alice.session_id()));
  EXPECT_EQ(OtherWhoAmI(alice.access_token()).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

INSTANTIATE_TEST_SUITE_P(Transports, RevocationEndToEndTest,
                         ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Mtls" : "Plaintext";
                         });

}  // namespace
}  // namespace im::auth
