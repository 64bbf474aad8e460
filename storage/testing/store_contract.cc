#include "storage/testing/store_contract.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "google/protobuf/util/message_differencer.h"

namespace im::storage::testing {

void StoreContractTest::SetUp() {
  db_ = GetParam().make();
  ASSERT_NE(db_, nullptr) << "could not make a " << GetParam().name
                          << " database";
}

absl::Time StoreContractTest::At(double seconds) {
  return absl::FromUnixSeconds(1700000000) + absl::Seconds(seconds) +
         absl::Nanoseconds(789);
}

absl::Time StoreContractTest::Stored(absl::Time t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

uint64_t StoreContractTest::MakeUser(const std::string& name) {
  NewUser user;
  user.username = name;
  user.username_norm = absl::AsciiStrToLower(name);
  user.display_name = name + " display";
  user.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
  user.created_at = At(0);
  absl::StatusOr<UserRecord> created = users().CreateUser(user);
  EXPECT_TRUE(created.ok()) << created.status();
  return created.ok() ? created->id : 0;
}

uint64_t StoreContractTest::MakeGroup(uint64_t owner,
                                     std::vector<uint64_t> members,
                                     absl::Time now) {
  absl::StatusOr<MemberChange> change =
      log().CreateGroup(owner, "group", members, 0, "", now);
  EXPECT_TRUE(change.ok()) << change.status();
  return change.ok() ? change->conversation.id : 0;
}

uint64_t StoreContractTest::Send(uint64_t conversation_id, uint64_t sender,
                                 const std::string& client_msg_id,
                                 const std::string& text, absl::Time now) {
  AppendRequest request;
  request.conversation_id = conversation_id;
  request.sender_id = sender;
  request.client_msg_id = client_msg_id;
  request.message.set_text(text);
  absl::StatusOr<std::vector<AppendOutcome>> outcomes =
      log().AppendMessages({request}, now);
  EXPECT_TRUE(outcomes.ok()) << outcomes.status();
  if (!outcomes.ok()) return 0;
  EXPECT_TRUE((*outcomes)[0].status.ok()) << (*outcomes)[0].status;
  return (*outcomes)[0].status.ok() ? (*outcomes)[0].entry.seq() : 0;
}

std::vector<Entry> StoreContractTest::ReadAll(uint64_t conversation_id) {
  absl::StatusOr<std::vector<Entry>> entries =
      reader().ReadAfter(conversation_id, 0, UINT64_MAX, 1000000);
  EXPECT_TRUE(entries.ok()) << entries.status();
  return entries.ok() ? *entries : std::vector<Entry>{};
}

std::vector<uint64_t> StoreContractTest::Seqs(
    const std::vector<Entry>& entries) {
  std::vector<uint64_t> seqs;
  for (const Entry& e : entries) seqs.push_back(e.seq());
  return seqs;
}

::testing::AssertionResult StoreContractTest::SameEntry(const Entry& a,
                                                      const Entry& b) {
  std::string diff;
  ::google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(a, b)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "entries differ: " << diff;
}

}  // namespace im::storage::testing
