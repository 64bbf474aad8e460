#include "services/auth/secret_token.h"

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace im::auth {
namespace {

TEST(SecretTokenTest, IssuedSecretsHaveThePrefixAndHashTheirBytes) {
  IssuedSecret issued = IssueSecret(kRefreshTokenPrefix);
  EXPECT_EQ(issued.secret.size(), 4u + 43u);
  EXPECT_EQ(issued.secret.substr(0, 4), "imr_");
  EXPECT_EQ(issued.hash.size(), 32u);
  EXPECT_EQ(HashOfSecret(kRefreshTokenPrefix, issued.secret), issued.hash);
}

TEST(SecretTokenTest, SecretsAreUnique) {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(seen.insert(IssueSecret(kApiKeyPrefix).secret).second);
  }
}

TEST(SecretTokenTest, RejectsWrongPrefixLengthAndAlphabet) {
  IssuedSecret key = IssueSecret(kApiKeyPrefix);
  EXPECT_EQ(HashOfSecret(kRefreshTokenPrefix, key.secret), std::nullopt);
  EXPECT_EQ(HashOfSecret(kApiKeyPrefix, key.secret + "A"), std::nullopt);
  EXPECT_EQ(HashOfSecret(kApiKeyPrefix, key.secret.substr(0, 46)),
            std::nullopt);
  std::string bad = key.secret;
  bad[10] = '+';  // standard base64, not base64url
  EXPECT_EQ(HashOfSecret(kApiKeyPrefix, bad), std::nullopt);
  EXPECT_EQ(HashOfSecret(kApiKeyPrefix, ""), std::nullopt);
  EXPECT_EQ(HashOfSecret(kApiKeyPrefix, "imk_"), std::nullopt);
}

TEST(SecretTokenTest, DisplayPrefixIsShortPartOfTheKey) {
  IssuedSecret key = IssueSecret(kApiKeyPrefix);
  EXPECT_EQ(DisplayPrefix(key.secret), key.secret.substr(0, 12));
}

}  // namespace
}  // namespace im::auth
