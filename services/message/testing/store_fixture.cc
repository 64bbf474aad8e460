#include "services/message/testing/store_fixture.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace im::message::testing {

StoreGroup MakeStoreGroup(storage::Database& db, int users) {
  StoreGroup out;
  for (int i = 0; i < users; ++i) {
    storage::NewUser user;
    user.username = absl::StrCat("user", i);
    user.username_norm = user.username;
    user.created_at = absl::Now();
    absl::StatusOr<storage::UserRecord> record = db.users()->CreateUser(user);
    EXPECT_TRUE(record.ok()) << record.status();
    out.users.push_back(record.ok() ? record->id : 0);
  }
  absl::StatusOr<storage::MemberChange> group = db.log()->CreateGroup(
      out.users[0], "g", {out.users[1]}, 0, "", absl::Now());
  EXPECT_TRUE(group.ok()) << group.status();
  if (group.ok()) out.group = group->conversation.id;
  return out;
}

}  // namespace im::message::testing
