#include "services/auth/username.h"

#include "gtest/gtest.h"

namespace im::auth {
namespace {

TEST(UsernameTest, AcceptsTheDocumentedAlphabet) {
  for (const char* name : {"bob", "Alice_01", "a.b-c", "9lives",
                           "abcdefghijklmnopqrstuvwxyz012345"}) {
    EXPECT_TRUE(ValidateUsername("username", name).ok()) << name;
  }
}

TEST(UsernameTest, RejectsLengthStartAndCharacters) {
  for (const char* name :
       {"", "ab", "abcdefghijklmnopqrstuvwxyz0123456", "_bob", ".bob", "-bob",
        "bob smith", "bob@x", "bób", "bob\n", "bo\0b"}) {
    absl::Status status = ValidateUsername("username", name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(ValidateUsername("username", std::string("bo\0b", 4)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(UsernameTest, NormalizesToLowerCase) {
  EXPECT_EQ(NormalizeUsername("Alice.B-C_9"), "alice.b-c_9");
}

}  // namespace
}  // namespace im::auth
