#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/testing/store_contract.h"

namespace im::storage::testing {
namespace {

using ::testing::ElementsAre;

NewUser Person(const std::string& username, const std::string& norm) {
  NewUser user;
  user.username = username;
  user.username_norm = norm;
  user.display_name = "Display " + username;
  user.password_hash = "$argon2id$hash";
  user.created_at = StoreContractTest::At(1);
  return user;
}

NewServiceAccount Service(const std::string& name, char key_byte) {
  NewServiceAccount account;
  account.name = name;
  account.name_norm = name;
  account.description = "publishes " + name;
  account.api_key_hash = std::string(32, key_byte);
  account.key_prefix = "imk_" + name.substr(0, 4);
  account.created_by = 7;
  account.created_at = StoreContractTest::At(2);
  return account;
}

std::vector<uint64_t> Ids(const std::vector<UserRecord>& users) {
  std::vector<uint64_t> ids;
  for (const UserRecord& u : users) ids.push_back(u.id);
  return ids;
}

TEST_P(UserStoreContractTest, CreateThenLookUpByIdAndName) {
  NewUser in = Person("Alice", "alice");
  in.is_admin = true;
  absl::StatusOr<UserRecord> created = users().CreateUser(in);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_GT(created->id, 0u);
  EXPECT_EQ(created->username, "Alice");
  EXPECT_EQ(created->username_norm, "alice");
  EXPECT_EQ(created->display_name, "Display Alice");
  EXPECT_EQ(created->password_hash, "$argon2id$hash");
  EXPECT_EQ(created->kind, UserKind::kPerson);
  EXPECT_TRUE(created->is_admin);
  EXPECT_EQ(created->status_text, "");
  EXPECT_EQ(created->created_at, Stored(At(1)));
  EXPECT_FALSE(created->last_seen_at.has_value());

  for (absl::StatusOr<UserRecord> got :
       {users().GetUser(created->id), users().GetUserByUsername("alice")}) {
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->id, created->id);
    EXPECT_EQ(got->username, "Alice");
    EXPECT_EQ(got->username_norm, "alice");
    EXPECT_EQ(got->display_name, "Display Alice");
    EXPECT_EQ(got->password_hash, "$argon2id$hash");
    EXPECT_EQ(got->kind, UserKind::kPerson);
    EXPECT_TRUE(got->is_admin);
    EXPECT_EQ(got->created_at, Stored(At(1)));
    EXPECT_FALSE(got->last_seen_at.has_value());
  }
}

TEST_P(UserStoreContractTest, UsernameIsUniqueIgnoringCase) {
  ASSERT_TRUE(users().CreateUser(Person("Alice", "alice")).ok());
  absl::StatusOr<UserRecord> again = users().CreateUser(Person("ALICE", "alice"));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<UserRecord> first = users().GetUserByUsername("alice");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->username, "Alice");
  // Service accounts share the namespace.
  EXPECT_EQ(users().CreateServiceAccount(Service("alice", 'k')).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_P(UserStoreContractTest, RejectsWhatTheSchemaCannotHold) {
  const std::vector<NewUser> bad = {
      Person("", "x"),
      Person("x", ""),
      Person("Bob", "Bob"),  // norm not lower-cased
      Person("bob", "b\xc3\xb6"),  // norm not ASCII
      Person(std::string(65, 'b'), "bob"),
      Person("bob", std::string(65, 'b')),
      Person("b\xff", "bob"),  // not UTF-8
      [] {
        NewUser u = Person("bob", "bob");
        u.display_name = std::string(129, 'd');
        return u;
      }(),
  };
  for (const NewUser& user : bad) {
    EXPECT_EQ(users().CreateUser(user).status().code(),
              absl::StatusCode::kInvalidArgument)
        << user.username << " / " << user.username_norm;
  }
  // Limits count characters, not bytes.
  std::string long_name;
  for (int i = 0; i < 64; ++i) long_name += "\xc3\xa9";  // U+00E9
  NewUser wide = Person(long_name, "wide");
  wide.display_name = std::string(128, 'd');
  absl::StatusOr<UserRecord> created = users().CreateUser(wide);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->username, long_name);
}

TEST_P(UserStoreContractTest, UnknownUsersAreNotFound) {
  EXPECT_EQ(users().GetUser(424242).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(users().GetUserByUsername("nobody").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(users().SetAdmin(424242, true).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(users().SetStatusText(424242, "hi").code(),
            absl::StatusCode::kNotFound);
}

TEST_P(UserStoreContractTest, BatchLookupsSkipUnknownAndSortById) {
  const uint64_t c = MakeUser("carol");
  const uint64_t a = MakeUser("alice");
  const uint64_t b = MakeUser("bob");
  absl::StatusOr<std::vector<UserRecord>> by_id =
      users().GetUsers({b, 999999, a, b});
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  std::vector<uint64_t> expected = {a, b};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Ids(*by_id), expected);

  absl::StatusOr<std::vector<UserRecord>> by_name =
      users().GetUsersByUsername({"carol", "nobody", "bob", "carol"});
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  expected = {b, c};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Ids(*by_name), expected);

  absl::StatusOr<std::vector<UserRecord>> none = users().GetUsers({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  none = users().GetUsersByUsername({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(UserStoreContractTest, SetAdminAndStatusText) {
  const uint64_t id = MakeUser("alice");
  ASSERT_TRUE(users().SetAdmin(id, true).ok());
  ASSERT_TRUE(users().SetAdmin(id, true).ok());  // unchanged is still OK
  ASSERT_TRUE(users().SetStatusText(id, "at lunch \xf0\x9f\x8d\x95").ok());
  ASSERT_TRUE(users().SetStatusText(id, "at lunch \xf0\x9f\x8d\x95").ok());
  absl::StatusOr<UserRecord> got = users().GetUser(id);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->is_admin);
  EXPECT_EQ(got->status_text, "at lunch \xf0\x9f\x8d\x95");
  ASSERT_TRUE(users().SetAdmin(id, false).ok());
  EXPECT_FALSE(users().GetUser(id)->is_admin);
  EXPECT_EQ(users().SetStatusText(id, std::string(256, 's')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(users().GetUser(id)->status_text, "at lunch \xf0\x9f\x8d\x95");
}

TEST_P(UserStoreContractTest, LastSeenOnlyMovesForward) {
  const uint64_t a = MakeUser("alice");
  const uint64_t b = MakeUser("bob");
  ASSERT_TRUE(users()
                  .UpdateLastSeen({{a, At(20)}, {b, At(10)}, {999999, At(5)},
                                   {b, At(12)}})
                  .ok());
  EXPECT_EQ(users().GetUser(a)->last_seen_at, Stored(At(20)));
  EXPECT_EQ(users().GetUser(b)->last_seen_at, Stored(At(12)));

  ASSERT_TRUE(users().UpdateLastSeen({{a, At(15)}, {b, At(30)}}).ok());
  EXPECT_EQ(users().GetUser(a)->last_seen_at, Stored(At(20)));
  EXPECT_EQ(users().GetUser(b)->last_seen_at, Stored(At(30)));
  ASSERT_TRUE(users().UpdateLastSeen({}).ok());
}

TEST_P(UserStoreContractTest, LastSeenForManyUsersAtOnce) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 150; ++i) ids.push_back(MakeUser(absl::StrCat("u", i)));
  std::vector<std::pair<uint64_t, absl::Time>> batch;
  for (int i = 0; i < 150; ++i) batch.emplace_back(ids[i], At(100 + i));
  ASSERT_TRUE(users().UpdateLastSeen(batch).ok());
  absl::StatusOr<std::vector<UserRecord>> got = users().GetUsers(ids);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 150u);
  for (const UserRecord& u : *got) {
    const int i = std::find(ids.begin(), ids.end(), u.id) - ids.begin();
    EXPECT_EQ(u.last_seen_at, Stored(At(100 + i))) << u.username;
  }
}

TEST_P(UserStoreContractTest, ServiceAccounts) {
  const uint64_t admin = MakeUser("admin");
  absl::StatusOr<ServiceAccountRecord> bot =
      users().CreateServiceAccount(Service("billing-bot", 'a'));
  ASSERT_TRUE(bot.ok()) << bot.status();
  EXPECT_EQ(bot->name, "billing-bot");
  EXPECT_EQ(bot->description, "publishes billing-bot");
  EXPECT_EQ(bot->key_prefix, "imk_bill");
  EXPECT_EQ(bot->created_by, 7u);
  EXPECT_EQ(bot->created_at, Stored(At(2)));
  EXPECT_FALSE(bot->revoked_at.has_value());

  absl::StatusOr<UserRecord> as_user = users().GetUser(bot->user_id);
  ASSERT_TRUE(as_user.ok());
  EXPECT_EQ(as_user->kind, UserKind::kService);
  EXPECT_EQ(as_user->username, "billing-bot");
  EXPECT_EQ(as_user->password_hash, "");

  absl::StatusOr<ServiceAccountRecord> other =
      users().CreateServiceAccount(Service("alerts", 'b'));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(users().CreateServiceAccount(Service("dup-key", 'a')).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(users().GetUserByUsername("dup-key").status().code(),
            absl::StatusCode::kNotFound);
  NewServiceAccount short_key = Service("short", 'c');
  short_key.api_key_hash = "abc";
  EXPECT_EQ(users().CreateServiceAccount(short_key).status().code(),
            absl::StatusCode::kInvalidArgument);

  absl::StatusOr<std::vector<ServiceAccountRecord>> all =
      users().ListServiceAccounts();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_LT((*all)[0].user_id, (*all)[1].user_id);

  absl::StatusOr<ServiceAccountRecord> found =
      users().FindServiceAccountByKeyHash(std::string(32, 'b'));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->user_id, other->user_id);
  EXPECT_EQ(users().FindServiceAccountByKeyHash(std::string(32, 'z'))
                .status()
                .code(),
            absl::StatusCode::kNotFound);

  absl::StatusOr<ServiceAccountRecord> revoked =
      users().RevokeServiceAccount(bot->user_id, At(50));
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked_at, Stored(At(50)));
  revoked = users().RevokeServiceAccount(bot->user_id, At(60));
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked_at, Stored(At(50)));
  found = users().FindServiceAccountByKeyHash(std::string(32, 'a'));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->revoked_at, Stored(At(50)));
  EXPECT_EQ(users().RevokeServiceAccount(admin, At(60)).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace im::storage::testing
