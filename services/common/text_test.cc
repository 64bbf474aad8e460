#include "services/common/text.h"

#include <string>

#include "gtest/gtest.h"

namespace im {
namespace {

TEST(Utf8Test, AcceptsValidText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("hello"));
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo"));          // é
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));          // €
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));      // 😀
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));      // U+10FFFF
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));  // NUL is valid UTF-8
}

TEST(Utf8Test, RejectsInvalidText) {
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("ok\xE2\x82"));        // truncated at the end
}

TEST(Utf8Test, CountsCodePoints) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("abc"), 3u);
  EXPECT_EQ(Utf8Length("h\xC3\xA9\xF0\x9F\x98\x80"), 3u);
}

TEST(LabelTest, ChecksControlsAndLength) {
  EXPECT_TRUE(ValidateLabel("title", "Team \xC3\xA9t\xC3\xA9", 1, 10).ok());
  EXPECT_EQ(ValidateLabel("title", "", 1, 10).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLabel("title", "a\nb", 1, 10).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLabel("title", "a\xC2\x85" "b", 1, 10).code(),
            absl::StatusCode::kInvalidArgument);  // C1 NEL
  EXPECT_EQ(ValidateLabel("title", "\xFF", 1, 10).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLabel("title", "abcdefghijk", 1, 10).code(),
            absl::StatusCode::kInvalidArgument);
  // Ten code points, twenty bytes: within a 10-character limit.
  EXPECT_TRUE(ValidateLabel("title",
                            "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
                            "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
                            1, 10)
                  .ok());
}

}  // namespace
}  // namespace im
