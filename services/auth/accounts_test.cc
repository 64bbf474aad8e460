// Accounts on the in-memory stores, with an injected clock.

#include "services/auth/accounts.h"

#include <sodium.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "observability/metric_reader.h"
#include "services/auth/auth_metrics.h"
#include "services/auth/secret_token.h"
#include "services/common/authenticator.h"
#include "services/common/proto_time.h"
#include "services/common/retry_after.h"
#include "storage/fake/fake_database.h"

namespace im::auth {
namespace {

using ::im::auth::v1::Role;

// Records every batch the feed pushes.
class RecordingSubscriber : public RevocationFeed::Subscriber {
 public:
  void OnRevoked(
      const std::vector<storage::RevokedSessionRecord>& revoked) override {
    absl::MutexLock lock(&mu_);
    batches_.push_back(revoked);
  }
  void OnFeedClosed() override {}
  std::vector<std::vector<storage::RevokedSessionRecord>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::vector<storage::RevokedSessionRecord>> batches_;
};

class AccountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto codec = TokenCodec::Create({TokenKey{1, std::string(32, 'k')}});
    ASSERT_TRUE(codec.ok());
    codec_ = *std::move(codec);
    PasswordHasher::Options hashing;
    hashing.opslimit = crypto_pwhash_OPSLIMIT_MIN;
    hashing.memlimit_bytes = crypto_pwhash_MEMLIMIT_MIN;
    auto hasher = PasswordHasher::Create(hashing);
    ASSERT_TRUE(hasher.ok());
    hasher_ = *std::move(hasher);
    RevocationFeed::Options feed_options;
    feed_options.poll_interval = absl::ZeroDuration();
    auto feed = RevocationFeed::Create(feed_options, db_.sessions(),
                                       &revocations_, Clock());
    ASSERT_TRUE(feed.ok()) << feed.status();
    feed_ = *std::move(feed);
    ASSERT_TRUE(feed_->Subscribe(&subscriber_));
    options_.admin_usernames = {"Root"};
    options_.login_throttle.per_username = {3, absl::Seconds(30)};
    options_.login_throttle.per_peer = {10, absl::Seconds(6)};
    options_.register_throttle.per_peer = {4, absl::Seconds(60)};
    accounts_ = NewAccounts(options_);
  }

  void TearDown() override { feed_->Unsubscribe(&subscriber_); }

  Accounts::Clock Clock() {
    return [this] { return now_; };
  }

  std::unique_ptr<Accounts> NewAccounts(const Accounts::Options& options) {
    return std::make_unique<Accounts>(options, db_.users(), db_.sessions(),
                                      codec_.get(), hasher_.get(), feed_.get(),
                                      Clock());
  }

  v1::User Register(const std::string& username,
                    const std::string& password = "password123") {
    v1::RegisterRequest request;
    request.set_username(username);
    request.set_password(password);
    auto response = accounts_->Register(request, "peer");
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->user() : v1::User();
  }

  absl::StatusOr<v1::LoginResponse> Login(
      const std::string& username, const std::string& password = "password123",
      const std::string& peer = "peer", const std::string& device = "phone") {
    v1::LoginRequest request;
    request.set_username(username);
    request.set_password(password);
    request.set_device_name(device);
    request.set_device_kind(v1::DEVICE_KIND_MOBILE);
    return accounts_->Login(request, peer);
  }

  v1::TokenPair MustLogin(const std::string& username,
                          const std::string& device = "phone") {
    auto response = Login(username, "password123", "peer", device);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->tokens() : v1::TokenPair();
  }

  Caller CallerOf(const v1::TokenPair& tokens) {
    auto caller = codec_->Verify(tokens.access_token(), now_);
    EXPECT_TRUE(caller.ok()) << caller.status();
    return caller.ok() ? *caller : Caller();
  }

  absl::StatusOr<v1::RefreshResponse> Refresh(const std::string& token) {
    v1::RefreshRequest request;
    request.set_refresh_token(token);
    return accounts_->Refresh(request);
  }

  // An admin's caller identity.
  Caller Admin() {
    Register("root");
    return CallerOf(MustLogin("root"));
  }

  storage::FakeDatabase db_;
  std::unique_ptr<TokenCodec> codec_;
  std::unique_ptr<PasswordHasher> hasher_;
  RevocationSet revocations_;
  std::unique_ptr<RevocationFeed> feed_;
  RecordingSubscriber subscriber_;
  Accounts::Options options_;
  std::unique_ptr<Accounts> accounts_;
  absl::Time now_ = absl::FromUnixSeconds(1800000000);
};

TEST_F(AccountsTest, RegisterCreatesUserUniqueRegardlessOfCase) {
  v1::User user = Register("Alice");
  EXPECT_EQ(user.username(), "Alice");
  EXPECT_EQ(user.display_name(), "Alice");
  EXPECT_EQ(user.role(), v1::ROLE_USER);
  EXPECT_EQ(FromProtoTime(user.created_at()), now_);
  EXPECT_NE(user.user_id(), 0u);

  v1::RegisterRequest again;
  again.set_username("aLICE");
  again.set_password("another-password");
  auto taken = accounts_->Register(again, "peer");
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(taken.status().message(), "username is taken");

  auto stored = db_.users()->GetUserByUsername("alice");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->password_hash.rfind("$argon2id$", 0), 0u);
}

TEST_F(AccountsTest, RegisterValidatesEveryField) {
  struct Case {
    std::string username, password, display_name;
  };
  const std::vector<Case> bad = {
      {"ab", "password123", ""},
      {std::string(33, 'a'), "password123", ""},
      {"_alice", "password123", ""},
      {"al ice", "password123", ""},
      {"alice", "1234567", ""},
      {"alice", std::string(1025, 'p'), ""},
      {"alice", "pass\xff\xfeword", ""},
      {"alice", "password123", "bad\nname"},
      {"alice", "password123", std::string(65, 'n')},
      {"alice", "password123", "\xc3"},
  };
  for (const Case& c : bad) {
    v1::RegisterRequest request;
    request.set_username(c.username);
    request.set_password(c.password);
    request.set_display_name(c.display_name);
    EXPECT_EQ(accounts_->Register(request, "peer").status().code(),
              absl::StatusCode::kInvalidArgument)
        << c.username << " / " << c.password.size() << " / " << c.display_name;
  }
  // The bounds themselves are fine.
  v1::RegisterRequest edge;
  edge.set_username("abc");
  edge.set_password(std::string(1024, 'p'));
  edge.set_display_name(std::string(64, 'n'));
  EXPECT_TRUE(accounts_->Register(edge, "peer").ok());
  edge.set_username("abd");
  edge.set_password("12345678");
  edge.set_display_name("Zoë 🎉");
  auto user = accounts_->Register(edge, "peer");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->user().display_name(), "Zoë 🎉");
}

TEST_F(AccountsTest, LoginIssuesVerifiableTokensForANewSession) {
  v1::User user = Register("alice");
  auto login = Login("ALICE");
  ASSERT_TRUE(login.ok()) << login.status();
  const v1::TokenPair& tokens = login->tokens();
  EXPECT_EQ(tokens.user_id(), user.user_id());
  EXPECT_NE(tokens.session_id(), 0u);
  EXPECT_EQ(tokens.role(), v1::ROLE_USER);
  EXPECT_EQ(FromProtoTime(tokens.access_expires_at()),
            now_ + absl::Minutes(15));
  EXPECT_EQ(FromProtoTime(tokens.refresh_expires_at()),
            now_ + absl::Hours(24 * 30));
  EXPECT_EQ(tokens.refresh_token().rfind("imr_", 0), 0u);

  Caller caller = CallerOf(tokens);
  EXPECT_EQ(caller.user_id, user.user_id());
  EXPECT_EQ(caller.session_id, tokens.session_id());
  EXPECT_EQ(caller.role, v1::ROLE_USER);

  auto session = db_.sessions()->GetSession(tokens.session_id());
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(session->device_name, "phone");
  EXPECT_EQ(session->device_kind, v1::DEVICE_KIND_MOBILE);
}

TEST_F(AccountsTest, UnknownUserAndWrongPasswordAreIndistinguishable) {
  Register("alice");
  auto wrong_password = Login("alice", "password124");
  auto unknown_user = Login("mallory", "password123");
  auto malformed_user = Login("x", "password123");
  auto short_password = Login("alice", "short");
  for (const auto* result :
       {&wrong_password, &unknown_user, &malformed_user, &short_password}) {
    EXPECT_EQ(result->status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(result->status().message(), Accounts::kLoginFailed);
  }
  EXPECT_EQ(wrong_password.status(), unknown_user.status());
}

TEST_F(AccountsTest, LoginValidatesDeviceFields) {
  Register("alice");
  v1::LoginRequest request;
  request.set_username("alice");
  request.set_password("password123");
  request.set_device_name("line\nbreak");
  EXPECT_EQ(accounts_->Login(request, "peer").status().code(),
            absl::StatusCode::kInvalidArgument);
  request.set_device_name(std::string(65, 'd'));
  EXPECT_EQ(accounts_->Login(request, "peer").status().code(),
            absl::StatusCode::kInvalidArgument);
  request.set_device_name("");
  request.set_device_kind(static_cast<v1::DeviceKind>(99));
  EXPECT_EQ(accounts_->Login(request, "peer").status().code(),
            absl::StatusCode::kInvalidArgument);
  request.set_device_kind(v1::DEVICE_KIND_CLI);
  EXPECT_TRUE(accounts_->Login(request, "peer").ok());
}

TEST_F(AccountsTest, FailedLoginsPerUsernameAreThrottled) {
  Register("alice");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Login("alice", "wrong-password", "peer" + std::to_string(i))
                  .status()
                  .code(),
              absl::StatusCode::kUnauthenticated);
  }
  // Even the right password waits now, from any address.
  auto throttled = Login("alice", "password123", "elsewhere");
  EXPECT_EQ(throttled.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(throttled.status().message(),
            "too many failed attempts; retry in 30 s");
  EXPECT_EQ(RetryAfterOf(throttled.status()), absl::Seconds(30));
  // Unknown usernames are throttled the same way (no enumeration).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(
        Login("nobody", "password123", "p" + std::to_string(i)).status().code(),
        absl::StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(Login("nobody", "password123", "p9").status().code(),
            absl::StatusCode::kResourceExhausted);

  now_ += absl::Seconds(30);
  EXPECT_TRUE(Login("alice", "password123", "elsewhere").ok());
  // Success resets the username's budget.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Login("alice", "wrong-password", "x").status().code(),
              absl::StatusCode::kUnauthenticated);
  }
}

TEST_F(AccountsTest, FailedLoginsPerPeerAreThrottled) {
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(Login("user" + std::to_string(i), "password123", "1.2.3.4")
                  .status()
                  .code(),
              absl::StatusCode::kUnauthenticated);
  }
  auto throttled = Login("someone", "password123", "1.2.3.4");
  EXPECT_EQ(throttled.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryAfterOf(throttled.status()), absl::Seconds(6));
  EXPECT_EQ(Login("someone", "password123", "5.6.7.8").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AccountsTest, RegisterConflictsPerPeerAreThrottled) {
  Register("alice");
  v1::RegisterRequest request;
  request.set_username("alice");
  request.set_password("password123");
  // The fixture's Register used one attempt and got it back.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(accounts_->Register(request, "probe").status().code(),
              absl::StatusCode::kAlreadyExists);
  }
  auto throttled = accounts_->Register(request, "probe");
  EXPECT_EQ(throttled.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(RetryAfterOf(throttled.status()).has_value());
  // Successful registrations cost nothing.
  for (int i = 0; i < 10; ++i) {
    request.set_username("fresh" + std::to_string(i));
    EXPECT_TRUE(accounts_->Register(request, "bulk").ok()) << i;
  }
}

TEST_F(AccountsTest, RefreshRotatesAndReuseRevokesTheSession) {
  Register("alice");
  v1::TokenPair first = MustLogin("alice");
  now_ += absl::Minutes(10);
  auto second = Refresh(first.refresh_token());
  ASSERT_TRUE(second.ok()) << second.status();
  const v1::TokenPair& rotated = second->tokens();
  EXPECT_EQ(rotated.session_id(), first.session_id());
  EXPECT_EQ(rotated.user_id(), first.user_id());
  EXPECT_NE(rotated.refresh_token(), first.refresh_token());
  EXPECT_NE(rotated.access_token(), first.access_token());
  EXPECT_EQ(FromProtoTime(rotated.access_expires_at()),
            now_ + absl::Minutes(15));
  EXPECT_EQ(FromProtoTime(rotated.refresh_expires_at()),
            now_ + absl::Hours(24 * 30));
  EXPECT_FALSE(revocations_.IsRevoked(first.session_id()));

  // The spent token again: theft. The session dies, its new token too.
  auto reused = Refresh(first.refresh_token());
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(reused.status().message(),
            "refresh token was already used; the session has been revoked");
  EXPECT_TRUE(revocations_.IsRevoked(first.session_id()));
  ASSERT_EQ(subscriber_.batches().size(), 1u);
  ASSERT_EQ(subscriber_.batches()[0].size(), 1u);
  EXPECT_EQ(subscriber_.batches()[0][0].session_id, first.session_id());
  EXPECT_EQ(subscriber_.batches()[0][0].user_id, first.user_id());
  auto after = Refresh(rotated.refresh_token());
  EXPECT_EQ(after.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(after.status().message(),
            "refresh token is invalid, expired or revoked");
  Authenticator authenticator(codec_.get(), &revocations_, Clock());
  EXPECT_EQ(
      authenticator.AuthenticateToken(rotated.access_token()).status().code(),
      absl::StatusCode::kUnauthenticated);
}

TEST_F(AccountsTest, RefreshRefusesGarbageAndExpiredTokens) {
  Register("alice");
  v1::TokenPair tokens = MustLogin("alice");
  for (const std::string& token : {std::string(""), std::string("imr_short"),
                                   IssueSecret(kRefreshTokenPrefix).secret,
                                   IssueSecret(kApiKeyPrefix).secret}) {
    auto result = Refresh(token);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(result.status().message(),
              "refresh token is invalid, expired or revoked");
  }
  now_ += absl::Hours(24 * 30) + absl::Seconds(1);
  EXPECT_EQ(Refresh(tokens.refresh_token()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AccountsTest, LogoutEndsOnlyTheCallingSession) {
  Register("alice");
  v1::TokenPair phone = MustLogin("alice", "phone");
  v1::TokenPair laptop = MustLogin("alice", "laptop");
  ASSERT_TRUE(accounts_->Logout(CallerOf(phone)).ok());
  EXPECT_TRUE(revocations_.IsRevoked(phone.session_id()));
  EXPECT_FALSE(revocations_.IsRevoked(laptop.session_id()));
  EXPECT_EQ(Refresh(phone.refresh_token()).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Refresh(laptop.refresh_token()).ok());

  auto sessions = accounts_->ListSessions(CallerOf(laptop));
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->sessions_size(), 1);
  EXPECT_EQ(sessions->sessions(0).session_id(), laptop.session_id());
  EXPECT_TRUE(sessions->sessions(0).current());
}

TEST_F(AccountsTest, LogoutAllEndsEverySessionInOneBatch) {
  Register("alice");
  Register("bob");
  v1::TokenPair a1 = MustLogin("alice");
  v1::TokenPair a2 = MustLogin("alice");
  v1::TokenPair a3 = MustLogin("alice");
  v1::TokenPair b1 = MustLogin("bob");
  auto result = accounts_->LogoutAll(CallerOf(a2));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->revoked_sessions(), 3u);
  for (const v1::TokenPair* t : {&a1, &a2, &a3}) {
    EXPECT_TRUE(revocations_.IsRevoked(t->session_id()));
  }
  EXPECT_FALSE(revocations_.IsRevoked(b1.session_id()));
  ASSERT_EQ(subscriber_.batches().size(), 1u);
  EXPECT_EQ(subscriber_.batches()[0].size(), 3u);
}

TEST_F(AccountsTest, CountsLoginsThrottlingAndRevocations) {
  prometheus::Registry registry;
  AuthMetrics metrics(registry);
  Accounts::Options options = options_;
  options.metrics = &metrics;
  accounts_ = NewAccounts(options);
  auto count = [&](const char* name, const char* label, const char* value) {
    return observability::FindSample(registry, name, {{label, value}})
        .value_or(-1);
  };

  Register("alice");
  v1::TokenPair first = MustLogin("alice");
  MustLogin("alice");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Login("alice", "wrong-password").status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(Login("alice", "wrong-password").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Login("alice", "password123", "peer", "").status().code(),
            absl::StatusCode::kResourceExhausted);
  v1::LoginRequest bad_device;
  bad_device.set_username("alice");
  bad_device.set_password("password123");
  bad_device.set_device_kind(static_cast<v1::DeviceKind>(99));
  EXPECT_EQ(accounts_->Login(bad_device, "peer").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(count("im_auth_logins_total", "result", "ok"), 2);
  EXPECT_EQ(count("im_auth_logins_total", "result", "failed"), 3);
  EXPECT_EQ(count("im_auth_logins_total", "result", "throttled"), 2);
  EXPECT_EQ(count("im_auth_logins_total", "result", "invalid"), 1);
  EXPECT_EQ(count("im_auth_logins_total", "result", "error"), 0);
  EXPECT_EQ(count("im_auth_throttled_total", "operation", "login"), 2);

  ASSERT_TRUE(accounts_->Logout(CallerOf(first)).ok());
  EXPECT_EQ(count("im_auth_sessions_revoked_total", "reason", "logout"), 1);
  now_ += absl::Seconds(30);
  v1::TokenPair again = MustLogin("alice");
  auto all = accounts_->LogoutAll(CallerOf(again));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->revoked_sessions(), 2u);
  EXPECT_EQ(count("im_auth_sessions_revoked_total", "reason", "logout_all"),
            2);
}

TEST_F(AccountsTest, ListSessionsNewestFirstWithCurrentMarked) {
  Register("alice");
  v1::TokenPair older = MustLogin("alice", "phone");
  now_ += absl::Seconds(5);
  v1::TokenPair newer = MustLogin("alice", "laptop");
  auto list = accounts_->ListSessions(CallerOf(older));
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->sessions_size(), 2);
  EXPECT_EQ(list->sessions(0).session_id(), newer.session_id());
  EXPECT_EQ(list->sessions(0).device_name(), "laptop");
  EXPECT_FALSE(list->sessions(0).current());
  EXPECT_EQ(list->sessions(1).session_id(), older.session_id());
  EXPECT_TRUE(list->sessions(1).current());
  EXPECT_EQ(list->sessions(1).device_kind(), v1::DEVICE_KIND_MOBILE);
  EXPECT_EQ(FromProtoTime(list->sessions(1).created_at()),
            now_ - absl::Seconds(5));
}

TEST_F(AccountsTest, WhoAmIAndSessionlessInternalCallers) {
  v1::User user = Register("alice");
  v1::TokenPair tokens = MustLogin("alice");
  auto me = accounts_->WhoAmI(CallerOf(tokens));
  ASSERT_TRUE(me.ok());
  EXPECT_EQ(me->user().user_id(), user.user_id());
  EXPECT_EQ(me->user().username(), "alice");
  EXPECT_EQ(me->session_id(), tokens.session_id());

  Caller internal;
  internal.role = v1::ROLE_INTERNAL;
  EXPECT_EQ(accounts_->WhoAmI(internal).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(accounts_->Logout(internal).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(accounts_->LogoutAll(internal).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(accounts_->ListSessions(internal).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Internal callers may look users up.
  v1::LookupUsersRequest lookup;
  lookup.add_user_ids(user.user_id());
  auto found = accounts_->LookupUsers(internal, lookup);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->users_size(), 1);
}

TEST_F(AccountsTest, LookupUsersByIdAndNameSkipsUnknown) {
  v1::User alice = Register("alice");
  v1::User bob = Register("Bob");
  Caller caller = CallerOf(MustLogin("alice"));
  v1::LookupUsersRequest request;
  request.add_user_ids(alice.user_id());
  request.add_user_ids(424242);
  request.add_usernames("BOB");
  request.add_usernames("alice");  // same user as the id: once
  request.add_usernames("nobody");
  request.add_usernames("not a name!");
  auto found = accounts_->LookupUsers(caller, request);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->users_size(), 2);
  std::set<std::string> names;
  for (const v1::User& user : found->users()) names.insert(user.username());
  EXPECT_EQ(names, (std::set<std::string>{"alice", "Bob"}));

  v1::LookupUsersRequest too_many;
  for (int i = 0; i < 501; ++i) too_many.add_user_ids(i + 1);
  EXPECT_EQ(accounts_->LookupUsers(caller, too_many).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AccountsTest, ValidateChecksSignatureExpiryAndRevocation) {
  Register("alice");
  v1::TokenPair tokens = MustLogin("alice");
  Caller caller = CallerOf(tokens);
  v1::ValidateRequest request;
  request.set_access_token(tokens.access_token());
  auto valid = accounts_->Validate(caller, request);
  ASSERT_TRUE(valid.ok()) << valid.status();
  EXPECT_EQ(valid->user_id(), tokens.user_id());
  EXPECT_EQ(valid->session_id(), tokens.session_id());
  EXPECT_EQ(valid->role(), v1::ROLE_USER);
  EXPECT_EQ(FromProtoTime(valid->expires_at()), now_ + absl::Minutes(15));

  request.set_access_token(tokens.access_token() + "x");
  EXPECT_EQ(accounts_->Validate(caller, request).status().code(),
            absl::StatusCode::kUnauthenticated);

  // Revoked in the database by another auth node (not published here).
  ASSERT_TRUE(db_.sessions()
                  ->RevokeSession(tokens.user_id(), tokens.session_id(),
                                  storage::RevokeReason::kAdmin, now_)
                  .ok());
  request.set_access_token(tokens.access_token());
  auto revoked = accounts_->Validate(caller, request);
  EXPECT_EQ(revoked.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(revoked.status().message(), "session has been revoked");

  v1::TokenPair other = MustLogin("alice");
  request.set_access_token(other.access_token());
  now_ += absl::Minutes(15);
  EXPECT_EQ(accounts_->Validate(caller, request).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AccountsTest, AdminUsernamesArePromotedAtLoginAndPersisted) {
  v1::User root = Register("ROOT");
  EXPECT_EQ(root.role(), v1::ROLE_ADMIN);
  EXPECT_EQ(MustLogin("root").role(), v1::ROLE_ADMIN);

  // An existing user named later in --admin_usernames.
  v1::User carol = Register("carol");
  EXPECT_EQ(carol.role(), v1::ROLE_USER);
  EXPECT_EQ(MustLogin("carol").role(), v1::ROLE_USER);
  Accounts::Options with_carol = options_;
  with_carol.admin_usernames.push_back("Carol");
  accounts_ = NewAccounts(with_carol);
  v1::TokenPair tokens = MustLogin("carol");
  EXPECT_EQ(tokens.role(), v1::ROLE_ADMIN);
  EXPECT_EQ(CallerOf(tokens).role, v1::ROLE_ADMIN);
  auto stored = db_.users()->GetUser(carol.user_id());
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->is_admin);
  // Refresh keeps the role.
  auto refreshed = Refresh(tokens.refresh_token());
  ASSERT_TRUE(refreshed.ok());
  EXPECT_EQ(refreshed->tokens().role(), v1::ROLE_ADMIN);
}

TEST_F(AccountsTest, ServiceAccountLifecycle) {
  Caller admin = Admin();
  v1::CreateServiceAccountRequest create;
  create.set_name("Billing-Bot");
  create.set_description("posts invoices");
  auto created = accounts_->CreateServiceAccount(admin, create);
  ASSERT_TRUE(created.ok()) << created.status();
  const v1::ServiceAccount& account = created->account();
  const std::string api_key = created->api_key();
  EXPECT_EQ(api_key.rfind("imk_", 0), 0u);
  EXPECT_EQ(account.key_prefix(), api_key.substr(0, 12));
  EXPECT_EQ(account.name(), "Billing-Bot");
  EXPECT_EQ(account.description(), "posts invoices");
  EXPECT_EQ(account.created_by(), admin.user_id);
  EXPECT_FALSE(account.has_revoked_at());

  // The key is stored only as its hash.
  auto stored = db_.users()->FindServiceAccountByKeyHash(
      *HashOfSecret(kApiKeyPrefix, api_key));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->user_id, account.user_id());

  v1::ExchangeApiKeyRequest exchange;
  exchange.set_api_key(api_key);
  auto tokens = accounts_->ExchangeApiKey(exchange, "peer");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->tokens().role(), v1::ROLE_SERVICE);
  EXPECT_EQ(tokens->tokens().user_id(), account.user_id());
  EXPECT_TRUE(tokens->tokens().refresh_token().empty());
  EXPECT_FALSE(tokens->tokens().has_refresh_expires_at());
  Caller service = CallerOf(tokens->tokens());
  EXPECT_EQ(service.role, v1::ROLE_SERVICE);
  auto session = db_.sessions()->GetSession(service.session_id);
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(session->device_kind, v1::DEVICE_KIND_SERVER);
  EXPECT_EQ(session->expires_at, now_ + absl::Minutes(15));

  auto me = accounts_->WhoAmI(service);
  ASSERT_TRUE(me.ok());
  EXPECT_EQ(me->user().role(), v1::ROLE_SERVICE);

  // A service account has no password to log in with.
  EXPECT_EQ(Login("billing-bot", "password123").status().message(),
            Accounts::kLoginFailed);

  auto list = accounts_->ListServiceAccounts(admin);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->accounts_size(), 1);
  EXPECT_EQ(list->accounts(0).user_id(), account.user_id());

  v1::RevokeServiceAccountRequest revoke;
  revoke.set_user_id(account.user_id());
  auto revoked = accounts_->RevokeServiceAccount(admin, revoke);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(FromProtoTime(revoked->account().revoked_at()), now_);
  EXPECT_TRUE(revocations_.IsRevoked(service.session_id));
  auto refused = accounts_->ExchangeApiKey(exchange, "peer");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(refused.status().message(), "invalid or revoked API key");

  revoke.set_user_id(999999);
  EXPECT_EQ(accounts_->RevokeServiceAccount(admin, revoke).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(AccountsTest, ServiceAccountNamesFollowUsernameRulesAndAreUnique) {
  Caller admin = Admin();
  Register("alice");
  v1::CreateServiceAccountRequest create;
  create.set_name("ALICE");
  EXPECT_EQ(accounts_->CreateServiceAccount(admin, create).status().code(),
            absl::StatusCode::kAlreadyExists);
  create.set_name("no spaces");
  EXPECT_EQ(accounts_->CreateServiceAccount(admin, create).status().code(),
            absl::StatusCode::kInvalidArgument);
  create.set_name("bot");
  create.set_description(std::string(257, 'd'));
  EXPECT_EQ(accounts_->CreateServiceAccount(admin, create).status().code(),
            absl::StatusCode::kInvalidArgument);
  create.set_description(std::string(256, 'd'));
  EXPECT_TRUE(accounts_->CreateServiceAccount(admin, create).ok());
  EXPECT_EQ(accounts_->CreateServiceAccount(admin, create).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(AccountsTest, OnlyAdminsManageServiceAccounts) {
  Register("alice");
  Caller user = CallerOf(MustLogin("alice"));
  Caller internal;
  internal.role = v1::ROLE_INTERNAL;
  Caller service;
  service.role = v1::ROLE_SERVICE;
  service.user_id = 77;
  service.session_id = 88;
  v1::CreateServiceAccountRequest create;
  create.set_name("bot");
  v1::RevokeServiceAccountRequest revoke;
  revoke.set_user_id(1);
  for (const Caller& caller : {user, internal, service}) {
    EXPECT_EQ(accounts_->CreateServiceAccount(caller, create).status().code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(accounts_->ListServiceAccounts(caller).status().code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(accounts_->RevokeServiceAccount(caller, revoke).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
}

TEST_F(AccountsTest, BadApiKeysAreRefusedAndThrottledPerPeer) {
  v1::ExchangeApiKeyRequest exchange;
  for (int i = 0; i < 10; ++i) {
    exchange.set_api_key(i % 2 ? "garbage" : IssueSecret(kApiKeyPrefix).secret);
    auto result = accounts_->ExchangeApiKey(exchange, "scanner");
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(result.status().message(), "invalid or revoked API key");
  }
  EXPECT_EQ(accounts_->ExchangeApiKey(exchange, "scanner").status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(AccountsTest, StoreOutagesAreUnavailableNotWrongPassword) {
  Register("alice");
  db_.InjectFailure(absl::UnavailableError("database down"));
  auto login = Login("alice");
  EXPECT_EQ(login.status().code(), absl::StatusCode::kUnavailable);
  db_.ClearFailure();
  EXPECT_TRUE(Login("alice").ok());
}

}  // namespace
}  // namespace im::auth
