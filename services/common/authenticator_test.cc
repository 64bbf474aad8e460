#include "services/common/authenticator.h"

#include <grpcpp/grpcpp.h>

#include <atomic>

#include "gtest/gtest.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "services/common/grpc_server.h"
#include "services/common/status.h"

namespace im {
namespace {

// A real server whose WhoAmI answers with what the Authenticator saw, so
// header parsing is tested over actual gRPC metadata.
class WhoAmIService final : public auth::v1::AuthService::Service {
 public:
  explicit WhoAmIService(const Authenticator* auth) : auth_(auth) {}

  grpc::Status WhoAmI(grpc::ServerContext* context,
                      const auth::v1::WhoAmIRequest*,
                      auth::v1::WhoAmIResponse* response) override {
    absl::StatusOr<Caller> caller = auth_->Authenticate(*context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    response->mutable_user()->set_user_id(caller->user_id);
    response->set_session_id(caller->session_id);
    return grpc::Status::OK;
  }

 private:
  const Authenticator* auth_;
};

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto codec = TokenCodec::Create({TokenKey{1, std::string(32, 's')}});
    ASSERT_TRUE(codec.ok());
    codec_ = *std::move(codec);
    auth_ = std::make_unique<Authenticator>(codec_.get(), &revocations_);
    service_ = std::make_unique<WhoAmIService>(auth_.get());
    auto server = GrpcServer::Start(ServerOptions{}, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = auth::v1::AuthService::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }

  std::string TokenFor(uint64_t user, uint64_t session) {
    Caller caller;
    caller.user_id = user;
    caller.session_id = session;
    caller.role = auth::v1::ROLE_USER;
    caller.expires_at = absl::Now() + absl::Minutes(5);
    return codec_->Mint(caller, absl::Now());
  }

  grpc::Status Call(const char* header_value,
                    auth::v1::WhoAmIResponse* response) {
    grpc::ClientContext context;
    if (header_value != nullptr) {
      context.AddMetadata("authorization", header_value);
    }
    return stub_->WhoAmI(&context, auth::v1::WhoAmIRequest(), response);
  }

  std::unique_ptr<TokenCodec> codec_;
  RevocationSet revocations_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<WhoAmIService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<auth::v1::AuthService::Stub> stub_;
};

TEST_F(AuthenticatorTest, AcceptsBearerTokenAnyCaseScheme) {
  auth::v1::WhoAmIResponse response;
  const std::string header = "Bearer " + TokenFor(5, 6);
  ASSERT_TRUE(Call(header.c_str(), &response).ok());
  EXPECT_EQ(response.user().user_id(), 5u);
  EXPECT_EQ(response.session_id(), 6u);
  const std::string lower = "bearer " + TokenFor(5, 6);
  EXPECT_TRUE(Call(lower.c_str(), &response).ok());
}

TEST_F(AuthenticatorTest, RejectsMissingOrMalformedHeader) {
  auth::v1::WhoAmIResponse response;
  EXPECT_EQ(Call(nullptr, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call("Basic abc", &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call("Bearer ", &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call("Bearer not-a-token", &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthenticatorTest, RejectsRevokedSessionAndNotifiesListeners) {
  std::atomic<uint64_t> notified{0};
  const uint64_t listener = revocations_.AddListener(
      [&](uint64_t session, uint64_t) { notified = session; });
  const std::string header = "Bearer " + TokenFor(5, 6);
  auth::v1::WhoAmIResponse response;
  ASSERT_TRUE(Call(header.c_str(), &response).ok());
  revocations_.Add(6, 5, absl::Now());
  EXPECT_EQ(notified.load(), 6u);
  EXPECT_EQ(Call(header.c_str(), &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Other sessions of the same user are unaffected.
  const std::string other = "Bearer " + TokenFor(5, 7);
  EXPECT_TRUE(Call(other.c_str(), &response).ok());
  revocations_.RemoveListener(listener);
  revocations_.Add(8, 5, absl::Now());
  EXPECT_EQ(notified.load(), 6u);
}

TEST(RevocationSetTest, PrunesOldEntries) {
  RevocationSet set;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  set.Add(1, 1, t0);
  set.Add(2, 1, t0 + absl::Minutes(10));
  set.PruneOlderThan(t0 + absl::Minutes(5));
  EXPECT_FALSE(set.IsRevoked(1));
  EXPECT_TRUE(set.IsRevoked(2));
  EXPECT_EQ(set.size(), 1u);
}

TEST(RequireRoleTest, DeniesOtherRoles) {
  Caller caller;
  caller.role = auth::v1::ROLE_USER;
  EXPECT_TRUE(RequireRole(caller, {auth::v1::ROLE_USER}).ok());
  EXPECT_EQ(RequireRole(caller, {auth::v1::ROLE_ADMIN,
                                 auth::v1::ROLE_INTERNAL})
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(InternalTokenSourceTest, MintsInternalTokens) {
  auto codec = TokenCodec::Create({TokenKey{1, std::string(32, 's')}});
  ASSERT_TRUE(codec.ok());
  InternalTokenSource source(codec->get());
  const std::string token = source.Token();
  EXPECT_EQ(token, source.Token());  // cached while fresh
  absl::StatusOr<Caller> caller = (*codec)->Verify(token, absl::Now());
  ASSERT_TRUE(caller.ok());
  EXPECT_TRUE(caller->is_internal());
}

}  // namespace
}  // namespace im
