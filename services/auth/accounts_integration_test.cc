// Accounts on MariaDB (tag "mysql"): the same flows as accounts_test on the
// real stores, plus what only a real database shows: concurrent use of one
// refresh token, and revocations made by another auth node reaching this
// node's feed through polling.
//
//   bazel test //services/auth:accounts_integration_test
//     --test_env=IM_TEST_MYSQL_HOST=127.0.0.1
//     --test_env=IM_TEST_MYSQL_PORT=13307
//     --test_env=IM_TEST_MYSQL_USER=im --test_env=IM_TEST_MYSQL_PASSWORD=im

#include <sodium.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "services/auth/accounts.h"
#include "services/common/authenticator.h"
#include "storage/mysql/mysql_database.h"
#include "storage/testing/test_database.h"

namespace im::auth {
namespace {

// One auth node: its own feed and revocation set over the shared database.
struct Node {
  RevocationSet revocations;
  std::unique_ptr<RevocationFeed> feed;
  std::unique_ptr<Accounts> accounts;
};

class AccountsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_db_ = storage::testing::TestDatabase::CreateOrFail();
    ASSERT_NE(test_db_, nullptr);
    auto db = storage::MysqlDatabase::Create(test_db_->options());
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    codec_ = *TokenCodec::Create({TokenKey{1, std::string(32, 'm')}});
    PasswordHasher::Options hashing;
    hashing.opslimit = crypto_pwhash_OPSLIMIT_MIN;
    hashing.memlimit_bytes = crypto_pwhash_MEMLIMIT_MIN;
    hasher_ = *PasswordHasher::Create(hashing);
    StartNode(&node_a_);
  }

  void TearDown() override {
    for (Node* node : {&node_a_, &node_b_}) {
      node->accounts.reset();
      node->feed.reset();
    }
  }

  void StartNode(Node* node) {
    RevocationFeed::Options feed_options;
    feed_options.poll_interval = absl::ZeroDuration();  // PollOnce by hand
    auto feed = RevocationFeed::Create(feed_options, db_->sessions(),
                                       &node->revocations);
    ASSERT_TRUE(feed.ok()) << feed.status();
    node->feed = *std::move(feed);
    Accounts::Options options;
    options.admin_usernames = {"root"};
    node->accounts = std::make_unique<Accounts>(
        options, db_->users(), db_->sessions(), codec_.get(), hasher_.get(),
        node->feed.get());
  }

  Accounts& accounts() { return *node_a_.accounts; }

  v1::User Register(const std::string& username) {
    v1::RegisterRequest request;
    request.set_username(username);
    request.set_password("password123");
    auto response = accounts().Register(request, "peer");
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->user() : v1::User();
  }

  v1::TokenPair Login(const std::string& username) {
    v1::LoginRequest request;
    request.set_username(username);
    request.set_password("password123");
    request.set_device_name("test device");
    request.set_device_kind(v1::DEVICE_KIND_DESKTOP);
    auto response = accounts().Login(request, "peer");
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->tokens() : v1::TokenPair();
  }

  Caller CallerOf(const v1::TokenPair& tokens) {
    return *codec_->Verify(tokens.access_token(), absl::Now());
  }

  absl::StatusOr<v1::RefreshResponse> Refresh(const std::string& token) {
    v1::RefreshRequest request;
    request.set_refresh_token(token);
    return accounts().Refresh(request);
  }

  std::unique_ptr<storage::testing::TestDatabase> test_db_;
  std::unique_ptr<storage::MysqlDatabase> db_;
  std::unique_ptr<TokenCodec> codec_;
  std::unique_ptr<PasswordHasher> hasher_;
  Node node_a_;
  Node node_b_;
};

TEST_F(AccountsIntegrationTest, RegisterLoginAndNoEnumeration) {
  v1::User alice = Register("Alice");
  v1::RegisterRequest again;
  again.set_username("ALICE");
  again.set_password("password123");
  EXPECT_EQ(accounts().Register(again, "peer").status().code(),
            absl::StatusCode::kAlreadyExists);

  v1::TokenPair tokens = Login("alice");
  EXPECT_EQ(tokens.user_id(), alice.user_id());
  Caller caller = CallerOf(tokens);
  EXPECT_EQ(caller.session_id, tokens.session_id());

  v1::LoginRequest wrong;
  wrong.set_username("alice");
  wrong.set_password("password124");
  v1::LoginRequest unknown;
  unknown.set_username("nobody");
  unknown.set_password("password124");
  const absl::Status a = accounts().Login(wrong, "p1").status();
  const absl::Status b = accounts().Login(unknown, "p2").status();
  EXPECT_EQ(a.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(a, b);
}

TEST_F(AccountsIntegrationTest, RefreshRotationReuseLogoutAndList) {
  Register("alice");
  v1::TokenPair phone = Login("alice");
  v1::TokenPair laptop = Login("alice");
  auto rotated = Refresh(phone.refresh_token());
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->tokens().session_id(), phone.session_id());

  auto sessions = accounts().ListSessions(CallerOf(laptop));
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->sessions_size(), 2);
  EXPECT_EQ(sessions->sessions(0).session_id(), laptop.session_id());
  EXPECT_TRUE(sessions->sessions(0).current());
  EXPECT_EQ(sessions->sessions(0).device_kind(), v1::DEVICE_KIND_DESKTOP);

  // Reuse of the spent token revokes the phone's session, not the laptop's.
  EXPECT_EQ(Refresh(phone.refresh_token()).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(node_a_.revocations.IsRevoked(phone.session_id()));
  EXPECT_EQ(Refresh(rotated->tokens().refresh_token()).status().code(),
            absl::StatusCode::kUnauthenticated);
  auto session = db_->sessions()->GetSession(phone.session_id());
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(session->revoke_reason, storage::RevokeReason::kRefreshReuse);

  ASSERT_TRUE(accounts().Logout(CallerOf(laptop)).ok());
  EXPECT_TRUE(node_a_.revocations.IsRevoked(laptop.session_id()));
  Login("alice");
  auto all = accounts().LogoutAll(CallerOf(Login("alice")));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->revoked_sessions(), 2u);
}

TEST_F(AccountsIntegrationTest,
       ConcurrentUseOfOneRefreshTokenRevokesTheSession) {
  Register("alice");
  v1::TokenPair tokens = Login("alice");
  constexpr int kThreads = 6;
  std::atomic<int> rotated{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto result = Refresh(tokens.refresh_token());
      if (result.ok()) {
        ++rotated;
      } else if (absl::IsUnauthenticated(result.status())) {
        ++refused;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  // Exactly one use wins; every other use is reuse and ends the session.
  EXPECT_EQ(rotated.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  auto session = db_->sessions()->GetSession(tokens.session_id());
  ASSERT_TRUE(session.ok());
  EXPECT_TRUE(session->revoked_at.has_value());
  EXPECT_TRUE(node_a_.revocations.IsRevoked(tokens.session_id()));
}

TEST_F(AccountsIntegrationTest, AnotherNodesRevocationsArriveByPolling) {
  StartNode(&node_b_);
  Register("alice");
  v1::TokenPair tokens = Login("alice");
  ASSERT_TRUE(accounts().Logout(CallerOf(tokens)).ok());
  EXPECT_TRUE(node_a_.revocations.IsRevoked(tokens.session_id()));
  EXPECT_FALSE(node_b_.revocations.IsRevoked(tokens.session_id()));
  ASSERT_TRUE(node_b_.feed->PollOnce().ok());
  EXPECT_TRUE(node_b_.revocations.IsRevoked(tokens.session_id()));

  // A node started later loads recent revocations at start-up.
  Node node_c;
  StartNode(&node_c);
  EXPECT_TRUE(node_c.revocations.IsRevoked(tokens.session_id()));
  node_c.accounts.reset();
  node_c.feed.reset();
}

TEST_F(AccountsIntegrationTest, AdminsAndServiceAccounts) {
  Register("root");
  v1::TokenPair admin_tokens = Login("root");
  EXPECT_EQ(admin_tokens.role(), v1::ROLE_ADMIN);
  Caller admin = CallerOf(admin_tokens);
  auto stored = db_->users()->GetUserByUsername("root");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->is_admin);

  v1::CreateServiceAccountRequest create;
  create.set_name("deploy-bot");
  create.set_description("announces deploys");
  auto created = accounts().CreateServiceAccount(admin, create);
  ASSERT_TRUE(created.ok()) << created.status();
  v1::ExchangeApiKeyRequest exchange;
  exchange.set_api_key(created->api_key());
  auto exchanged = accounts().ExchangeApiKey(exchange, "peer");
  ASSERT_TRUE(exchanged.ok()) << exchanged.status();
  EXPECT_EQ(exchanged->tokens().role(), v1::ROLE_SERVICE);
  auto listed = accounts().ListServiceAccounts(admin);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->accounts_size(), 1);
  EXPECT_EQ(listed->accounts(0).key_prefix(), created->api_key().substr(0, 12));

  v1::RevokeServiceAccountRequest revoke;
  revoke.set_user_id(created->account().user_id());
  ASSERT_TRUE(accounts().RevokeServiceAccount(admin, revoke).ok());
  EXPECT_TRUE(node_a_.revocations.IsRevoked(exchanged->tokens().session_id()));
  EXPECT_EQ(accounts().ExchangeApiKey(exchange, "peer").status().code(),
            absl::StatusCode::kUnauthenticated);

  v1::ValidateRequest validate;
  validate.set_access_token(exchanged->tokens().access_token());
  EXPECT_EQ(accounts().Validate(admin, validate).status().code(),
            absl::StatusCode::kUnauthenticated);
  validate.set_access_token(admin_tokens.access_token());
  EXPECT_TRUE(accounts().Validate(admin, validate).ok());
}

}  // namespace
}  // namespace im::auth
