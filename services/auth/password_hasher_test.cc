#include "services/auth/password_hasher.h"

#include <sodium.h>

#include "gtest/gtest.h"

namespace im::auth {
namespace {

PasswordHasher::Options Fast() {
  PasswordHasher::Options options;
  options.opslimit = crypto_pwhash_OPSLIMIT_MIN;
  options.memlimit_bytes = crypto_pwhash_MEMLIMIT_MIN;
  return options;
}

TEST(PasswordHasherTest, HashesAreArgon2idSaltedAndVerify) {
  auto hasher = PasswordHasher::Create(Fast());
  ASSERT_TRUE(hasher.ok()) << hasher.status();
  auto a = (*hasher)->Hash("correct horse");
  auto b = (*hasher)->Hash("correct horse");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->rfind("$argon2id$v=19$", 0), 0u) << *a;
  EXPECT_NE(*a, *b);  // fresh salt each time
  EXPECT_TRUE((*hasher)->Verify(*a, "correct horse"));
  EXPECT_FALSE((*hasher)->Verify(*a, "correct horsE"));
  EXPECT_FALSE((*hasher)->Verify(*a, ""));
}

TEST(PasswordHasherTest, PasswordsWithNulBytesAreNotTruncated) {
  auto hasher = PasswordHasher::Create(Fast());
  ASSERT_TRUE(hasher.ok());
  const std::string password("abc\0def12", 9);
  auto hash = (*hasher)->Hash(password);
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE((*hasher)->Verify(*hash, password));
  EXPECT_FALSE((*hasher)->Verify(*hash, "abc"));
}

TEST(PasswordHasherTest, MissingOrMalformedHashNeverMatches) {
  auto hasher = PasswordHasher::Create(Fast());
  ASSERT_TRUE(hasher.ok());
  EXPECT_FALSE((*hasher)->Verify("", "anything"));
  EXPECT_FALSE((*hasher)->Verify("$argon2id$garbage", "anything"));
  EXPECT_FALSE((*hasher)->Verify(std::string(500, '$'), "anything"));
  EXPECT_FALSE((*hasher)->Verify("plaintext-password", "plaintext-password"));
}

TEST(PasswordHasherTest, NeedsRehashWhenParametersDiffer) {
  auto weak = PasswordHasher::Create(Fast());
  PasswordHasher::Options stronger = Fast();
  stronger.opslimit += 1;
  auto strong = PasswordHasher::Create(stronger);
  ASSERT_TRUE(weak.ok() && strong.ok());
  auto hash = (*weak)->Hash("password123");
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE((*weak)->NeedsRehash(*hash));
  EXPECT_TRUE((*strong)->NeedsRehash(*hash));
  EXPECT_TRUE((*strong)->NeedsRehash(""));
}

TEST(PasswordHasherTest, RefusesLimitsOutOfRange) {
  PasswordHasher::Options options;
  options.opslimit = 0;
  EXPECT_EQ(PasswordHasher::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = PasswordHasher::Options();
  options.memlimit_bytes = 1024;
  EXPECT_EQ(PasswordHasher::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PasswordHasherTest, DefaultsMeetOwaspMinimum) {
  PasswordHasher::Options defaults;
  EXPECT_GE(defaults.opslimit, PasswordHasher::kOwaspMinOpslimit);
  EXPECT_GE(defaults.memlimit_bytes, PasswordHasher::kOwaspMinMemlimitBytes);
  auto hasher = PasswordHasher::Create(defaults);
  ASSERT_TRUE(hasher.ok());
  auto hash = (*hasher)->Hash("password123");
  ASSERT_TRUE(hash.ok());
  EXPECT_NE(hash->find("m=32768,t=3,p=1"), std::string::npos) << *hash;
}

}  // namespace
}  // namespace im::auth
