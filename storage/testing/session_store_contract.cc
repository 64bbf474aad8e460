#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/testing/store_contract.h"

namespace im::storage::testing {
namespace {

std::string Hash(char c) { return std::string(32, c); }

std::vector<uint64_t> SessionIds(const std::vector<SessionRecord>& list) {
  std::vector<uint64_t> ids;
  for (const SessionRecord& s : list) ids.push_back(s.id);
  return ids;
}

std::vector<uint64_t> RevokedIds(const std::vector<RevokedSessionRecord>& list) {
  std::vector<uint64_t> ids;
  for (const RevokedSessionRecord& s : list) ids.push_back(s.session_id);
  return ids;
}

NewSession Session(uint64_t user, const std::string& hash) {
  NewSession s;
  s.user_id = user;
  s.device_name = "laptop";
  s.device_kind = 3;
  s.now = StoreContractTest::At(0);
  s.expires_at = StoreContractTest::At(1000);
  s.refresh_token_hash = hash;
  return s;
}

TEST_P(SessionStoreContractTest, CreateAndGet) {
  const uint64_t user = MakeUser("alice");
  absl::StatusOr<SessionRecord> created =
      sessions().CreateSession(Session(user, Hash('a')));
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<SessionRecord> got = sessions().GetSession(created->id);
  ASSERT_TRUE(got.ok()) << got.status();
  for (const SessionRecord& s : {*created, *got}) {
    EXPECT_EQ(s.id, created->id);
    EXPECT_EQ(s.user_id, user);
    EXPECT_EQ(s.device_name, "laptop");
    EXPECT_EQ(s.device_kind, 3);
    EXPECT_EQ(s.created_at, Stored(At(0)));
    EXPECT_EQ(s.last_used_at, Stored(At(0)));
    EXPECT_EQ(s.expires_at, Stored(At(1000)));
    EXPECT_FALSE(s.revoked_at.has_value());
    EXPECT_FALSE(s.revoke_reason.has_value());
  }
  // Service-account sessions have no refresh token.
  EXPECT_TRUE(sessions().CreateSession(Session(user, "")).ok());
}

TEST_P(SessionStoreContractTest, CreateRejectsBadInput) {
  const uint64_t user = MakeUser("alice");
  EXPECT_EQ(sessions().CreateSession(Session(999999, Hash('a'))).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(sessions().CreateSession(Session(user, "short")).status().code(),
            absl::StatusCode::kInvalidArgument);
  NewSession long_name = Session(user, Hash('b'));
  long_name.device_name = std::string(129, 'x');
  EXPECT_EQ(sessions().CreateSession(long_name).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(sessions().CreateSession(Session(user, Hash('c'))).ok());
  EXPECT_EQ(sessions().CreateSession(Session(user, Hash('c'))).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(sessions().GetSession(999999).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(SessionStoreContractTest, RotationExtendsTheSession) {
  const uint64_t user = MakeUser("alice");
  absl::StatusOr<SessionRecord> s =
      sessions().CreateSession(Session(user, Hash('1')));
  ASSERT_TRUE(s.ok());
  absl::StatusOr<RotateResult> r =
      sessions().RotateRefreshToken(Hash('1'), Hash('2'), At(2000), At(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, RotateOutcome::kRotated);
  EXPECT_EQ(r->session.id, s->id);
  EXPECT_EQ(r->session.expires_at, Stored(At(2000)));
  EXPECT_EQ(r->session.last_used_at, Stored(At(10)));
  EXPECT_FALSE(r->session.revoked_at.has_value());
  absl::StatusOr<SessionRecord> got = sessions().GetSession(s->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->expires_at, Stored(At(2000)));
  EXPECT_EQ(got->last_used_at, Stored(At(10)));

  r = sessions().RotateRefreshToken(Hash('2'), Hash('3'), At(3000), At(20));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, RotateOutcome::kRotated);
  EXPECT_EQ(r->session.expires_at, Stored(At(3000)));
}

TEST_P(SessionStoreContractTest, ReusingASpentTokenRevokesTheSession) {
  const uint64_t user = MakeUser("alice");
  absl::StatusOr<SessionRecord> s =
      sessions().CreateSession(Session(user, Hash('1')));
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(sessions()
                .RotateRefreshToken(Hash('1'), Hash('2'), At(2000), At(10))
                ->outcome,
            RotateOutcome::kRotated);
  absl::StatusOr<RotateResult> reuse =
      sessions().RotateRefreshToken(Hash('1'), Hash('3'), At(2000), At(20));
  ASSERT_TRUE(reuse.ok()) << reuse.status();
  EXPECT_EQ(reuse->outcome, RotateOutcome::kReuseRevoked);
  EXPECT_EQ(reuse->session.id, s->id);
  EXPECT_EQ(reuse->session.revoked_at, Stored(At(20)));
  EXPECT_EQ(reuse->session.revoke_reason, RevokeReason::kRefreshReuse);

  absl::StatusOr<SessionRecord> got = sessions().GetSession(s->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->revoked_at, Stored(At(20)));
  EXPECT_EQ(got->revoke_reason, RevokeReason::kRefreshReuse);

  // The newest token dies with the session; the reuse stored nothing.
  absl::StatusOr<RotateResult> next =
      sessions().RotateRefreshToken(Hash('2'), Hash('4'), At(2000), At(30));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->outcome, RotateOutcome::kRevoked);
  EXPECT_EQ(next->session.revoked_at, Stored(At(20)));
  EXPECT_EQ(sessions()
                .RotateRefreshToken(Hash('3'), Hash('5'), At(2000), At(30))
                ->outcome,
            RotateOutcome::kUnknown);
  // Presenting the spent token again keeps the first revocation.
  EXPECT_EQ(sessions()
                .RotateRefreshToken(Hash('1'), Hash('6'), At(2000), At(40))
                ->outcome,
            RotateOutcome::kRevoked);
  EXPECT_EQ(sessions().GetSession(s->id)->revoked_at, Stored(At(20)));
}

TEST_P(SessionStoreContractTest, RotationOutcomes) {
  const uint64_t user = MakeUser("alice");
  EXPECT_EQ(sessions()
                .RotateRefreshToken(Hash('x'), Hash('y'), At(2000), At(10))
                ->outcome,
            RotateOutcome::kUnknown);
  EXPECT_EQ(sessions()
                .RotateRefreshToken("not a hash", Hash('y'), At(2000), At(10))
                ->outcome,
            RotateOutcome::kUnknown);
  EXPECT_EQ(sessions()
                .RotateRefreshToken(Hash('x'), "short", At(2000), At(10))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);

  // Expired session.
  absl::StatusOr<SessionRecord> s =
      sessions().CreateSession(Session(user, Hash('1')));
  ASSERT_TRUE(s.ok());
  absl::StatusOr<RotateResult> r =
      sessions().RotateRefreshToken(Hash('1'), Hash('2'), At(5000), At(1000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, RotateOutcome::kExpired);
  EXPECT_EQ(r->session.id, s->id);
  EXPECT_FALSE(r->session.revoked_at.has_value());
  EXPECT_EQ(sessions().GetSession(s->id)->expires_at, Stored(At(1000)));

  // Revoked session.
  absl::StatusOr<SessionRecord> t =
      sessions().CreateSession(Session(user, Hash('3')));
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(
      sessions().RevokeSession(user, t->id, RevokeReason::kLogout, At(5)).ok());
  r = sessions().RotateRefreshToken(Hash('3'), Hash('4'), At(2000), At(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, RotateOutcome::kRevoked);
  EXPECT_EQ(r->session.revoke_reason, RevokeReason::kLogout);

  // A new hash that is already stored changes nothing.
  absl::StatusOr<SessionRecord> u =
      sessions().CreateSession(Session(user, Hash('5')));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(sessions()
                .RotateRefreshToken(Hash('5'), Hash('3'), At(2000), At(10))
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  r = sessions().RotateRefreshToken(Hash('5'), Hash('6'), At(2000), At(11));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, RotateOutcome::kRotated);
}

TEST_P(SessionStoreContractTest, RevokeOneSession) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  absl::StatusOr<SessionRecord> s =
      sessions().CreateSession(Session(alice, Hash('1')));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(sessions()
                .RevokeSession(bob, s->id, RevokeReason::kLogout, At(5))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(sessions()
                .RevokeSession(alice, 999999, RevokeReason::kLogout, At(5))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(sessions().GetSession(s->id)->revoked_at.has_value());

  absl::StatusOr<RevokedSessionRecord> r =
      sessions().RevokeSession(alice, s->id, RevokeReason::kLogout, At(5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->session_id, s->id);
  EXPECT_EQ(r->user_id, alice);
  EXPECT_EQ(r->revoked_at, Stored(At(5)));
  r = sessions().RevokeSession(alice, s->id, RevokeReason::kAdmin, At(9));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revoked_at, Stored(At(5)));
  absl::StatusOr<SessionRecord> got = sessions().GetSession(s->id);
  EXPECT_EQ(got->revoked_at, Stored(At(5)));
  EXPECT_EQ(got->revoke_reason, RevokeReason::kLogout);
}

TEST_P(SessionStoreContractTest, RevokeAllAndListLive) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  auto open = [&](uint64_t user, char hash, double created, double expires) {
    NewSession n = Session(user, Hash(hash));
    n.now = At(created);
    n.expires_at = At(expires);
    absl::StatusOr<SessionRecord> s = sessions().CreateSession(n);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->id : 0;
  };
  const uint64_t old_live = open(alice, '1', 1, 1000);
  const uint64_t expired = open(alice, '2', 2, 50);
  const uint64_t revoked = open(alice, '3', 3, 1000);
  const uint64_t new_live = open(alice, '4', 4, 1000);
  const uint64_t same_time = open(alice, '5', 4, 1000);
  const uint64_t bobs = open(bob, '6', 1, 1000);
  ASSERT_TRUE(sessions()
                  .RevokeSession(alice, revoked, RevokeReason::kLogout, At(60))
                  .ok());

  absl::StatusOr<std::vector<SessionRecord>> live =
      sessions().ListLiveSessions(alice, At(100));
  ASSERT_TRUE(live.ok()) << live.status();
  std::vector<uint64_t> expected = {std::max(new_live, same_time),
                                    std::min(new_live, same_time), old_live};
  EXPECT_EQ(SessionIds(*live), expected);

  absl::StatusOr<std::vector<RevokedSessionRecord>> all =
      sessions().RevokeAllSessions(alice, RevokeReason::kLogoutAll, At(200));
  ASSERT_TRUE(all.ok()) << all.status();
  expected = {old_live, new_live, same_time};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(RevokedIds(*all), expected);
  for (const RevokedSessionRecord& r : *all) {
    EXPECT_EQ(r.user_id, alice);
    EXPECT_EQ(r.revoked_at, Stored(At(200)));
  }
  EXPECT_EQ(sessions().GetSession(new_live)->revoke_reason,
            RevokeReason::kLogoutAll);
  EXPECT_EQ(sessions().GetSession(revoked)->revoke_reason,
            RevokeReason::kLogout);
  EXPECT_FALSE(sessions().GetSession(expired)->revoked_at.has_value());
  EXPECT_FALSE(sessions().GetSession(bobs)->revoked_at.has_value());
  EXPECT_TRUE(sessions().ListLiveSessions(alice, At(201))->empty());
  EXPECT_EQ(SessionIds(*sessions().ListLiveSessions(bob, At(201))),
            std::vector<uint64_t>{bobs});
  EXPECT_TRUE(sessions()
                  .RevokeAllSessions(alice, RevokeReason::kLogoutAll, At(300))
                  ->empty());
}

TEST_P(SessionStoreContractTest, ListRevokedSince) {
  const uint64_t alice = MakeUser("alice");
  std::vector<uint64_t> ids;
  for (char c : std::string("abcd")) {
    absl::StatusOr<SessionRecord> s =
        sessions().CreateSession(Session(alice, Hash(c)));
    ASSERT_TRUE(s.ok());
    ids.push_back(s->id);
  }
  ASSERT_TRUE(
      sessions().RevokeSession(alice, ids[2], RevokeReason::kLogout, At(30)).ok());
  ASSERT_TRUE(
      sessions().RevokeSession(alice, ids[0], RevokeReason::kLogout, At(10)).ok());
  ASSERT_TRUE(
      sessions().RevokeSession(alice, ids[1], RevokeReason::kAdmin, At(20)).ok());

  absl::StatusOr<std::vector<RevokedSessionRecord>> since =
      sessions().ListRevokedSince(At(20));
  ASSERT_TRUE(since.ok()) << since.status();
  EXPECT_EQ(RevokedIds(*since), (std::vector<uint64_t>{ids[1], ids[2]}));
  EXPECT_EQ((*since)[0].revoked_at, Stored(At(20)));
  EXPECT_EQ((*since)[1].revoked_at, Stored(At(30)));
  EXPECT_EQ(RevokedIds(*sessions().ListRevokedSince(At(0))),
            (std::vector<uint64_t>{ids[0], ids[1], ids[2]}));
  EXPECT_TRUE(sessions().ListRevokedSince(At(31))->empty());
}

}  // namespace
}  // namespace im::storage::testing
