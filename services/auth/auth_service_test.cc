// AuthServiceImpl over real gRPC (loopback, port 0) on the in-memory stores.

#include "services/auth/auth_service.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sodium.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "storage/fake/fake_database.h"

namespace im::auth {
namespace {

constexpr char kPassword[] = "password123";

class AuthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto codec = TokenCodec::Create({TokenKey{1, std::string(32, 'k')}});
    ASSERT_TRUE(codec.ok());
    codec_ = *std::move(codec);
    internal_tokens_ = std::make_unique<InternalTokenSource>(codec_.get());
    options_.password_hashing.opslimit = crypto_pwhash_OPSLIMIT_MIN;
    options_.password_hashing.memlimit_bytes = crypto_pwhash_MEMLIMIT_MIN;
    options_.revocations.poll_interval = absl::ZeroDuration();
    options_.accounts.login_throttle.per_username = {2, absl::Seconds(30)};
    options_.accounts.admin_usernames = {"root"};
  }

  void TearDown() override {
    if (server_ != nullptr) {
      service_->Drain();
      server_->Shutdown(absl::Seconds(1));
    }
    server_.reset();
    service_.reset();
  }

  void Start() {
    // A still clock: throttle refills cannot blur the exact retry hints.
    const absl::Time now = now_;
    auto service =
        AuthServiceImpl::Create(options_, db_.users(), db_.sessions(),
                                codec_.get(), [now] { return now; });
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    auto server = GrpcServer::Start(ServerOptions{}, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::AuthService::NewStub(channel_);
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& token = "") {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    if (!token.empty()) AttachBearerToken(context.get(), token);
    return context;
  }

  void Register(const std::string& username) {
    v1::RegisterRequest request;
    request.set_username(username);
    request.set_password(kPassword);
    v1::RegisterResponse response;
    grpc::Status status = stub_->Register(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  grpc::Status Login(const std::string& username, const std::string& password,
                     v1::LoginResponse* response,
                     grpc::ClientContext* context = nullptr) {
    v1::LoginRequest request;
    request.set_username(username);
    request.set_password(password);
    std::unique_ptr<grpc::ClientContext> own;
    if (context == nullptr) {
      own = Context();
      context = own.get();
    }
    return stub_->Login(context, request, response);
  }

  v1::TokenPair MustLogin(const std::string& username) {
    v1::LoginResponse response;
    grpc::Status status = Login(username, kPassword, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.tokens();
  }

  grpc::Status WhoAmI(const std::string& token,
                      v1::WhoAmIResponse* response = nullptr) {
    v1::WhoAmIResponse ignored;
    return stub_->WhoAmI(Context(token).get(), v1::WhoAmIRequest(),
                         response ? response : &ignored);
  }

  storage::FakeDatabase db_;
  const absl::Time now_ = absl::Now();
  std::unique_ptr<TokenCodec> codec_;
  std::unique_ptr<InternalTokenSource> internal_tokens_;
  AuthServiceImpl::Options options_;
  std::unique_ptr<AuthServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AuthService::Stub> stub_;
};

// Calls `method` of AuthService with an empty request body through the
// generic stub; `token` is attached when not empty.
grpc::Status CallWithEmptyBody(grpc::Channel* channel,
                               const std::string& method,
                               const std::string& token) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  if (!token.empty()) AttachBearerToken(&context, token);
  grpc::ByteBuffer request;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/im.auth.v1.AuthService/" + method, {}, &request,
                 &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  return status;
}

TEST_F(AuthServiceTest, EveryMethodButTheFourEntryPointsNeedsAToken) {
  Start();
  const std::set<std::string> public_methods = {"Register", "Login", "Refresh",
                                                "ExchangeApiKey"};
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "im.auth.v1.AuthService");
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->method_count(), 14);
  int checked = 0;
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string name = service->method(i)->name();
    SCOPED_TRACE(name);
    grpc::Status no_token = CallWithEmptyBody(channel_.get(), name, "");
    if (public_methods.count(name) > 0) {
      // Answered on its merits, not for want of a token.
      EXPECT_EQ(no_token.error_message().find("authorization"),
                std::string::npos)
          << no_token.error_message();
      continue;
    }
    ++checked;
    EXPECT_EQ(no_token.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(no_token.error_message(),
              "missing `authorization: Bearer <token>` metadata");
    grpc::Status bad_token =
        CallWithEmptyBody(channel_.get(), name, "v1.forged.token");
    EXPECT_EQ(bad_token.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(checked, 10);
}

TEST_F(AuthServiceTest, LoginWhoAmILogoutOverGrpc) {
  Start();
  Register("alice");
  v1::TokenPair tokens = MustLogin("alice");
  v1::WhoAmIResponse me;
  ASSERT_TRUE(WhoAmI(tokens.access_token(), &me).ok());
  EXPECT_EQ(me.user().username(), "alice");
  EXPECT_EQ(me.session_id(), tokens.session_id());

  v1::LogoutResponse out;
  ASSERT_TRUE(stub_
                  ->Logout(Context(tokens.access_token()).get(),
                           v1::LogoutRequest(), &out)
                  .ok());
  grpc::Status after = WhoAmI(tokens.access_token());
  EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(after.error_message(), "session has been revoked");
}

TEST_F(AuthServiceTest, UnknownUserAndWrongPasswordGetTheSameAnswer) {
  Start();
  Register("alice");
  v1::LoginResponse response;
  grpc::Status wrong = Login("alice", "not-the-password", &response);
  grpc::Status unknown = Login("nobody", "not-the-password", &response);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(unknown.error_code(), wrong.error_code());
  EXPECT_EQ(unknown.error_message(), wrong.error_message());
  EXPECT_EQ(unknown.error_details(), wrong.error_details());
}

TEST_F(AuthServiceTest, ThrottledLoginCarriesRetryAfterTrailer) {
  Start();
  Register("alice");
  v1::LoginResponse response;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Login("alice", "wrong-password", &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  auto context = Context();
  grpc::Status throttled = Login("alice", kPassword, &response, context.get());
  EXPECT_EQ(throttled.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(throttled.error_message(),
            "too many failed attempts; retry in 30 s");
  const auto& trailers = context->GetServerTrailingMetadata();
  auto it = trailers.find("retry-after-ms");
  ASSERT_NE(it, trailers.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "30000");
}

TEST_F(AuthServiceTest, WatchRevocationsIsInternalOnly) {
  Start();
  Register("alice");
  v1::TokenPair tokens = MustLogin("alice");
  auto context = Context(tokens.access_token());
  auto reader =
      stub_->WatchRevocations(context.get(), v1::WatchRevocationsRequest());
  v1::RevocationBatch batch;
  EXPECT_FALSE(reader->Read(&batch));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  auto anonymous = Context();
  auto reader2 =
      stub_->WatchRevocations(anonymous.get(), v1::WatchRevocationsRequest());
  EXPECT_FALSE(reader2->Read(&batch));
  EXPECT_EQ(reader2->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthServiceTest, WatchRevocationsSendsSnapshotThenLiveBatches) {
  Start();
  Register("alice");
  Register("bob");
  v1::TokenPair early = MustLogin("alice");
  v1::LogoutResponse out;
  ASSERT_TRUE(stub_
                  ->Logout(Context(early.access_token()).get(),
                           v1::LogoutRequest(), &out)
                  .ok());
  v1::TokenPair a1 = MustLogin("alice");
  v1::TokenPair a2 = MustLogin("alice");
  v1::TokenPair b1 = MustLogin("bob");

  grpc::ClientContext context;
  AttachBearerToken(&context, internal_tokens_->Token());
  auto reader =
      stub_->WatchRevocations(&context, v1::WatchRevocationsRequest());
  v1::RevocationBatch snapshot;
  ASSERT_TRUE(reader->Read(&snapshot));
  EXPECT_TRUE(snapshot.snapshot());
  ASSERT_EQ(snapshot.sessions_size(), 1);
  EXPECT_EQ(snapshot.sessions(0).session_id(), early.session_id());
  EXPECT_EQ(snapshot.sessions(0).user_id(), early.user_id());

  v1::LogoutAllResponse all;
  ASSERT_TRUE(stub_
                  ->LogoutAll(Context(a1.access_token()).get(),
                              v1::LogoutAllRequest(), &all)
                  .ok());
  EXPECT_EQ(all.revoked_sessions(), 2u);
  v1::RevocationBatch live;
  ASSERT_TRUE(reader->Read(&live));
  EXPECT_FALSE(live.snapshot());
  std::set<uint64_t> ids;
  for (const v1::RevokedSession& s : live.sessions())
    ids.insert(s.session_id());
  EXPECT_EQ(ids, (std::set<uint64_t>{a1.session_id(), a2.session_id()}));

  ASSERT_TRUE(
      stub_->Logout(Context(b1.access_token()).get(), v1::LogoutRequest(), &out)
          .ok());
  ASSERT_TRUE(reader->Read(&live));
  ASSERT_EQ(live.sessions_size(), 1);
  EXPECT_EQ(live.sessions(0).session_id(), b1.session_id());

  // Draining ends the stream so watchers move elsewhere.
  service_->Drain();
  EXPECT_FALSE(reader->Read(&live));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(AuthServiceTest, RefreshAndServiceAccountsOverGrpc) {
  Start();
  Register("root");
  Register("alice");
  v1::TokenPair admin = MustLogin("root");
  EXPECT_EQ(admin.role(), v1::ROLE_ADMIN);
  v1::TokenPair user = MustLogin("alice");

  v1::RefreshRequest refresh;
  refresh.set_refresh_token(user.refresh_token());
  v1::RefreshResponse refreshed;
  ASSERT_TRUE(stub_->Refresh(Context().get(), refresh, &refreshed).ok());
  grpc::Status reused = stub_->Refresh(Context().get(), refresh, &refreshed);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Reuse revoked the session on this node at once.
  EXPECT_EQ(WhoAmI(refreshed.tokens().access_token()).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  v1::CreateServiceAccountRequest create;
  create.set_name("bot");
  v1::CreateServiceAccountResponse created;
  EXPECT_EQ(stub_
                ->CreateServiceAccount(Context(user.access_token()).get(),
                                       create, &created)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);  // alice's session is gone
  v1::TokenPair alice2 = MustLogin("alice");
  EXPECT_EQ(stub_
                ->CreateServiceAccount(Context(alice2.access_token()).get(),
                                       create, &created)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(stub_
                  ->CreateServiceAccount(Context(admin.access_token()).get(),
                                         create, &created)
                  .ok());
  v1::ExchangeApiKeyRequest exchange;
  exchange.set_api_key(created.api_key());
  v1::ExchangeApiKeyResponse exchanged;
  ASSERT_TRUE(
      stub_->ExchangeApiKey(Context().get(), exchange, &exchanged).ok());
  EXPECT_EQ(exchanged.tokens().role(), v1::ROLE_SERVICE);
  v1::WhoAmIResponse me;
  ASSERT_TRUE(WhoAmI(exchanged.tokens().access_token(), &me).ok());
  EXPECT_EQ(me.user().username(), "bot");

  v1::RevokeServiceAccountRequest revoke;
  revoke.set_user_id(created.account().user_id());
  v1::RevokeServiceAccountResponse revoked;
  ASSERT_TRUE(stub_
                  ->RevokeServiceAccount(Context(admin.access_token()).get(),
                                         revoke, &revoked)
                  .ok());
  EXPECT_EQ(WhoAmI(exchanged.tokens().access_token()).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthServiceTest, LoginBurstIsBoundedAndOtherCallsStillAnswer) {
  // One hashing thread, one waiting slot, and a hash slow enough that a
  // burst of 16 cannot drain while it arrives.
  options_.credential_threads = 1;
  options_.credential_queue = 1;
  options_.password_hashing.opslimit = 3;
  options_.password_hashing.memlimit_bytes = size_t{64} << 20;
  options_.accounts.login_throttle.per_username = {1000, absl::Seconds(1)};
  options_.accounts.login_throttle.per_peer = {1000, absl::Seconds(1)};
  Start();
  Register("alice");
  v1::TokenPair tokens = MustLogin("alice");

  constexpr int kBurst = 16;
  struct Call {
    grpc::ClientContext context;
    v1::LoginRequest request;
    v1::LoginResponse response;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Call>> calls;
  absl::Mutex mu;
  int done = 0;
  for (int i = 0; i < kBurst; ++i) {
    calls.push_back(std::make_unique<Call>());
    Call* call = calls.back().get();
    call->request.set_username("alice");
    call->request.set_password(kPassword);
    stub_->async()->Login(&call->context, &call->request, &call->response,
                          [call, &mu, &done](grpc::Status status) {
                            absl::MutexLock lock(&mu);
                            call->status = std::move(status);
                            ++done;
                          });
  }
  // While logins wait for the hashing thread, other RPCs are served.
  v1::ListSessionsResponse sessions;
  grpc::Status listed =
      stub_->ListSessions(Context(tokens.access_token()).get(),
                          v1::ListSessionsRequest(), &sessions);
  EXPECT_TRUE(listed.ok()) << listed.error_message();
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* n) { return *n == kBurst; }, &done));
  }
  int ok = 0;
  int refused = 0;
  for (const auto& call : calls) {
    if (call->status.ok()) {
      ++ok;
      continue;
    }
    ASSERT_EQ(call->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << call->status.error_message();
    EXPECT_EQ(call->status.error_message(), "auth is overloaded; retry in 1 s");
    const auto& trailers = call->context.GetServerTrailingMetadata();
    auto it = trailers.find("retry-after-ms");
    ASSERT_NE(it, trailers.end());
    EXPECT_EQ(std::string(it->second.data(), it->second.size()), "1000");
    ++refused;
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(refused, 1);
  EXPECT_EQ(ok + refused, kBurst);
}

}  // namespace
}  // namespace im::auth
