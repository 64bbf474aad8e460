#include "services/message/message_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace im::message {
namespace {

v1::Message Text(const std::string& text) {
  v1::Message message;
  message.set_text(text);
  return message;
}

TEST(MessageValidationTest, AcceptsAnOrdinaryMessage) {
  v1::Message message = Text("héllo 👋");
  message.set_content_type("text/plain");
  (*message.mutable_metadata())["reply_to"] = "42";
  EXPECT_TRUE(ValidateSend(MessageLimits(), 7, "0f3c:a-b_c.d", message).ok());
  EXPECT_TRUE(
      ValidateSend(MessageLimits(), 7, "x", Text(std::string(8192, 'a'))).ok());
}

TEST(MessageValidationTest, RejectsWithInvalidArgumentNamingTheProblem) {
  const MessageLimits limits;
  struct Case {
    uint64_t conversation_id;
    std::string client_msg_id;
    v1::Message message;
    std::string mentions;
  };
  v1::Message many_entries = Text("x");
  for (int i = 0; i < 17; ++i) {
    (*many_entries.mutable_metadata())[absl::StrCat("k", i)] = "v";
  }
  v1::Message empty_key = Text("x");
  (*empty_key.mutable_metadata())[""] = "v";
  v1::Message bad_type = Text("x");
  bad_type.set_content_type(std::string(65, 't'));
  const Case cases[] = {
      {0, "id", Text("x"), "conversation_id"},
      {1, "", Text("x"), "client_msg_id"},
      {1, std::string(65, 'a'), Text("x"), "client_msg_id"},
      {1, "a/b", Text("x"), "client_msg_id"},
      {1, "id", Text(""), "neither text nor metadata"},
      {1, "id", Text(std::string(8193, 'a')), "8192"},
      {1, "id", Text("\xed\xa0\x80"), "UTF-8"},  // surrogate
      {1, "id", Text("\xc0\x80"), "UTF-8"},      // overlong
      {1, "id", many_entries, "entries"},
      {1, "id", empty_key, "keys"},
      {1, "id", bad_type, "content_type"},
  };
  for (const Case& c : cases) {
    absl::Status status =
        ValidateSend(limits, c.conversation_id, c.client_msg_id, c.message);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.mentions;
    EXPECT_NE(status.message().find(c.mentions), std::string::npos)
        << status.message();
  }
}

}  // namespace
}  // namespace im::message
