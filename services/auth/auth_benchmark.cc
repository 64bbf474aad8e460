// Costs of the auth path (not a test; run with
//   bazel run -c opt //services/auth:auth_benchmark
// ). Logins per second with the production argon2id parameters, how a
// failed login for an unknown user compares with a wrong password, and the
// per-call cost of verifying an access token in any service.

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "services/auth/accounts.h"
#include "services/common/authenticator.h"
#include "storage/fake/fake_database.h"

namespace im::auth {
namespace {

// One Accounts over the fake stores with default (production) options and
// a user "alice", shared by the benchmark threads.
struct LoginFixture {
  LoginFixture() {
    codec = *TokenCodec::Create({TokenKey{1, std::string(32, 'k')}});
    hasher = *PasswordHasher::Create(PasswordHasher::Options());
    RevocationFeed::Options feed_options;
    feed_options.poll_interval = absl::ZeroDuration();
    feed = *RevocationFeed::Create(feed_options, db.sessions(), &revocations);
    Accounts::Options options;
    // Measure hashing, not throttling.
    options.login_throttle.per_username = {1 << 30, absl::Seconds(1)};
    options.login_throttle.per_peer = {1 << 30, absl::Seconds(1)};
    accounts = std::make_unique<Accounts>(options, db.users(), db.sessions(),
                                          codec.get(), hasher.get(),
                                          feed.get());
    v1::RegisterRequest request;
    request.set_username("alice");
    request.set_password("correct horse battery");
    if (!accounts->Register(request, "bench").ok()) std::abort();
  }

  storage::FakeDatabase db;
  std::unique_ptr<TokenCodec> codec;
  std::unique_ptr<PasswordHasher> hasher;
  RevocationSet revocations;
  std::unique_ptr<RevocationFeed> feed;
  std::unique_ptr<Accounts> accounts;
};

LoginFixture& Fixture() {
  static LoginFixture* fixture = new LoginFixture();
  return *fixture;
}

void RunLogins(benchmark::State& state, const std::string& username,
               const std::string& password, bool expect_ok) {
  Accounts& accounts = *Fixture().accounts;
  v1::LoginRequest request;
  request.set_username(username);
  request.set_password(password);
  request.set_device_name("bench");
  for (auto _ : state) {
    absl::StatusOr<v1::LoginResponse> response =
        accounts.Login(request, "bench");
    if (response.ok() != expect_ok) {
      state.SkipWithError("unexpected login outcome");
      break;
    }
    benchmark::DoNotOptimize(response);
  }
  state.SetItemsProcessed(state.iterations());
}

// Full successful Login (argon2id verify, session insert, token mint).
void BM_LoginSuccess(benchmark::State& state) {
  RunLogins(state, "alice", "correct horse battery", true);
}
BENCHMARK(BM_LoginSuccess)->Threads(1)->Threads(2)->UseRealTime();

void BM_LoginWrongPassword(benchmark::State& state) {
  RunLogins(state, "alice", "wrong horse battery", false);
}
BENCHMARK(BM_LoginWrongPassword)->Threads(1)->UseRealTime();

// Must cost about what a wrong password costs (dummy-hash verify).
void BM_LoginUnknownUser(benchmark::State& state) {
  RunLogins(state, "mallory", "wrong horse battery", false);
}
BENCHMARK(BM_LoginUnknownUser)->Threads(1)->UseRealTime();

// A user's access token, valid for 15 minutes.
std::string UserToken(const TokenCodec& codec) {
  Caller caller;
  caller.user_id = 42;
  caller.session_id = 4242;
  caller.role = v1::ROLE_USER;
  caller.expires_at = absl::Now() + absl::Minutes(15);
  return codec.Mint(caller, absl::Now());
}

void BM_TokenVerify(benchmark::State& state) {
  TokenCodec& codec = *Fixture().codec;
  const std::string token = UserToken(codec);
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(codec.Verify(token, now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenVerify);

// What every authenticated RPC in every service pays: verify + revocation
// lookup, with `range(0)` revoked sessions in the set.
void BM_AuthenticateToken(benchmark::State& state) {
  TokenCodec& codec = *Fixture().codec;
  RevocationSet revocations;
  for (int64_t i = 0; i < state.range(0); ++i) {
    revocations.Add(1000000 + i, 7, absl::Now());
  }
  Authenticator authenticator(&codec, &revocations);
  const std::string token = UserToken(codec);
  for (auto _ : state) {
    absl::StatusOr<Caller> result = authenticator.AuthenticateToken(token);
    if (!result.ok()) {
      state.SkipWithError("token refused");
      break;
    }
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuthenticateToken)->Arg(0)->Arg(100000)->ThreadRange(1, 2);

}  // namespace
}  // namespace im::auth
