#include "services/common/access_token.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace im {
namespace {

using auth::v1::ROLE_ADMIN;
using auth::v1::ROLE_USER;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

std::unique_ptr<TokenCodec> MakeCodec(uint8_t id, char fill) {
  auto codec = TokenCodec::Create({TokenKey{id, std::string(32, fill)}});
  EXPECT_TRUE(codec.ok()) << codec.status();
  return *std::move(codec);
}

Caller MakeCaller() {
  Caller caller;
  caller.user_id = 42;
  caller.session_id = 7;
  caller.role = ROLE_ADMIN;
  caller.expires_at = kNow + absl::Minutes(15);
  return caller;
}

TEST(TokenCodecTest, RoundTrips) {
  auto codec = MakeCodec(1, 'k');
  const std::string token = codec->Mint(MakeCaller(), kNow);
  absl::StatusOr<Caller> caller = codec->Verify(token, kNow);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->user_id, 42u);
  EXPECT_EQ(caller->session_id, 7u);
  EXPECT_EQ(caller->role, ROLE_ADMIN);
  EXPECT_EQ(caller->expires_at, kNow + absl::Minutes(15));
}

TEST(TokenCodecTest, RejectsExpired) {
  auto codec = MakeCodec(1, 'k');
  const std::string token = codec->Mint(MakeCaller(), kNow);
  EXPECT_EQ(codec->Verify(token, kNow + absl::Minutes(15)).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(TokenCodecTest, RejectsTamperingAnywhere) {
  auto codec = MakeCodec(1, 'k');
  const std::string token = codec->Mint(MakeCaller(), kNow);
  for (size_t i = 0; i < token.size(); ++i) {
    std::string forged = token;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    if (forged == token) continue;
    EXPECT_EQ(codec->Verify(forged, kNow).status().code(),
              absl::StatusCode::kUnauthenticated)
        << "byte " << i;
  }
}

TEST(TokenCodecTest, RejectsOtherKeysAndGarbage) {
  auto codec = MakeCodec(1, 'k');
  auto other_secret = MakeCodec(1, 'x');
  auto other_id = MakeCodec(2, 'k');
  const std::string token = codec->Mint(MakeCaller(), kNow);
  EXPECT_EQ(other_secret->Verify(token, kNow).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(other_id->Verify(token, kNow).status().code(),
            absl::StatusCode::kUnauthenticated);
  for (const char* garbage : {"", "v1.", "v1..", "v2.abc.def", "v1.!!!.???",
                              "Bearer", "v1.AAAA.AAAA"}) {
    EXPECT_EQ(codec->Verify(garbage, kNow).status().code(),
              absl::StatusCode::kUnauthenticated)
        << garbage;
  }
}

TEST(TokenCodecTest, RotatedKeysStillVerify) {
  auto old_codec = MakeCodec(1, 'o');
  auto rotated = TokenCodec::Create(
      {TokenKey{2, std::string(32, 'n')}, TokenKey{1, std::string(32, 'o')}});
  ASSERT_TRUE(rotated.ok());
  const std::string old_token = old_codec->Mint(MakeCaller(), kNow);
  EXPECT_TRUE((*rotated)->Verify(old_token, kNow).ok());
  const std::string new_token = (*rotated)->Mint(MakeCaller(), kNow);
  EXPECT_FALSE(old_codec->Verify(new_token, kNow).ok());
}

TEST(TokenCodecTest, RejectsBadKeys) {
  EXPECT_EQ(TokenCodec::Create({}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenCodec::Create({TokenKey{1, "short"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenCodec::Create({TokenKey{0, std::string(32, 'k')}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenCodec::Create({TokenKey{3, std::string(32, 'k')},
                                TokenKey{3, std::string(32, 'j')}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TokenCodecTest, LoadsGeneratedKeyFile) {
  const std::string path =
      std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") +
      "/keys";
  {
    std::ofstream out(path);
    out << "# comment\n" << TokenCodec::GenerateKeyFile(9);
  }
  auto codec = TokenCodec::FromKeyFile(path);
  ASSERT_TRUE(codec.ok()) << codec.status();
  Caller caller = MakeCaller();
  caller.role = ROLE_USER;
  EXPECT_TRUE((*codec)->Verify((*codec)->Mint(caller, kNow), kNow).ok());
  {
    std::ofstream out(path);
    out << "9 not-base64!\n";
  }
  EXPECT_EQ(TokenCodec::FromKeyFile(path).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenCodec::FromKeyFile(path + ".missing").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace im
