#include "services/history/page_token.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace im::history {
namespace {

TEST(PageTokenTest, ConversationListTokenRoundTrips) {
  const ConversationListPosition pos{absl::FromUnixMicros(1700000000123456),
                                     987654321};
  const std::string token = EncodeConversationListToken(pos);
  absl::StatusOr<ConversationListPosition> decoded =
      DecodeConversationListToken(token);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->last_activity_at, pos.last_activity_at);
  EXPECT_EQ(decoded->conversation_id, 987654321u);
  // URL-safe and unpadded.
  EXPECT_EQ(token.find_first_of("+/="), std::string::npos);
}

TEST(PageTokenTest, ConversationListTokenKeepsExtremes) {
  const ConversationListPosition pos{absl::FromUnixMicros(-1), ~uint64_t{0}};
  absl::StatusOr<ConversationListPosition> decoded =
      DecodeConversationListToken(EncodeConversationListToken(pos));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->last_activity_at, absl::FromUnixMicros(-1));
  EXPECT_EQ(decoded->conversation_id, ~uint64_t{0});
}

TEST(PageTokenTest, SyncTokenRoundTrips) {
  absl::StatusOr<uint64_t> decoded = DecodeSyncToken(EncodeSyncToken(42));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, 42u);
}

void ExpectMalformedList(const std::string& token) {
  EXPECT_EQ(DecodeConversationListToken(token).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "token: " << token;
}

void ExpectMalformedSync(const std::string& token) {
  EXPECT_EQ(DecodeSyncToken(token).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "token: " << token;
}

TEST(PageTokenTest, RejectsGarbage) {
  for (const std::string& token :
       std::initializer_list<std::string>{"x", "!!!!", "AAAA", "not a token",
                                          "AQE", std::string(4096, 'A')}) {
    ExpectMalformedList(token);
    ExpectMalformedSync(token);
  }
}

TEST(PageTokenTest, RejectsTheOtherRpcsToken) {
  ExpectMalformedList(EncodeSyncToken(42));
  ExpectMalformedSync(EncodeConversationListToken(
      ConversationListPosition{absl::FromUnixMicros(5), 7}));
}

TEST(PageTokenTest, RejectsWrongVersionAndLength) {
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(EncodeSyncToken(42), &raw));
  std::string wrong_version = raw;
  wrong_version[0] = 2;
  ExpectMalformedSync(absl::WebSafeBase64Escape(wrong_version));
  ExpectMalformedSync(absl::WebSafeBase64Escape(raw + "x"));
  ExpectMalformedSync(absl::WebSafeBase64Escape(raw.substr(0, raw.size() - 1)));
}

TEST(PageTokenTest, RejectsNonCanonicalSpellings) {
  const std::string token = EncodeSyncToken(42);
  ExpectMalformedSync(token + "=");
  ExpectMalformedSync(token + "==");
  // Standard base64 alphabet instead of the URL-safe one, where they differ.
  const std::string list_token = EncodeConversationListToken(
      ConversationListPosition{absl::FromUnixMicros(0x3ffffffffff), ~0ull});
  std::string standard = list_token;
  for (char& c : standard) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  ASSERT_NE(standard, list_token);
  ExpectMalformedList(standard);
}

TEST(PageTokenTest, RejectsZeroConversationIds) {
  ExpectMalformedSync(EncodeSyncToken(0));
  ExpectMalformedList(EncodeConversationListToken(
      ConversationListPosition{absl::FromUnixMicros(5), 0}));
}

}  // namespace
}  // namespace im::history
