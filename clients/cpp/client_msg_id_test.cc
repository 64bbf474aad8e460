#include "clients/cpp/client_msg_id.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace im::client {
namespace {

TEST(ClientMsgIdTest, IsAVersion4UuidTheServerAccepts) {
  const std::string id = NewClientMsgId();
  ASSERT_EQ(id.size(), 36u);
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      EXPECT_EQ(id[i], '-') << id;
    } else {
      EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(id[i]))) << id;
    }
  }
  EXPECT_EQ(id[14], '4') << id;
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
}

TEST(ClientMsgIdTest, DoesNotRepeat) {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < 100000; ++i) {
    EXPECT_TRUE(seen.insert(NewClientMsgId()).second);
  }
}

}  // namespace
}  // namespace im::client
