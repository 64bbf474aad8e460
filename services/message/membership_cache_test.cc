#include "services/message/membership_cache.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "services/message/testing/store_fixture.h"
#include "storage/fake/fake_database.h"

namespace im::message {
namespace {

// The fake's reader, with GetConversation able to wait for the test and
// counting calls.
class GatedReader final : public storage::ConversationReader {
 public:
  explicit GatedReader(storage::ConversationReader* reader) : reader_(reader) {}
  void Hold() { hold_ = true; }
  void WaitUntilHeld() { held_.WaitForNotification(); }
  void Release() { release_.Notify(); }
  int loads() const { return loads_.load(); }

  absl::StatusOr<storage::ConversationRecord> GetConversation(
      uint64_t id) override {
    ++loads_;
    if (hold_.exchange(false)) {
      held_.Notify();
      release_.WaitForNotification();
    }
    return reader_->GetConversation(id);
  }
  absl::StatusOr<storage::MemberRecord> GetMember(uint64_t c,
                                                  uint64_t u) override {
    return reader_->GetMember(c, u);
  }
  absl::StatusOr<storage::MembershipView> GetMembershipView(
      uint64_t u, uint64_t c) override {
    return reader_->GetMembershipView(u, c);
  }
  absl::StatusOr<std::vector<storage::MemberRecord>> ListMembers(
      uint64_t c, uint64_t after, uint32_t limit) override {
    return reader_->ListMembers(c, after, limit);
  }
  absl::StatusOr<std::vector<uint64_t>> ListActiveMemberIds(uint64_t c) override {
    return reader_->ListActiveMemberIds(c);
  }
  absl::StatusOr<std::vector<storage::MembershipView>> ListMemberships(
      uint64_t u, uint64_t after, uint32_t limit, bool include_left) override {
    return reader_->ListMemberships(u, after, limit, include_left);
  }
  absl::StatusOr<std::vector<storage::ConversationListRow>>
  ListConversationsPage(uint64_t u,
                        const std::optional<storage::ConversationPageCursor>& a,
                        uint32_t limit) override {
    return reader_->ListConversationsPage(u, a, limit);
  }
  absl::StatusOr<std::vector<storage::Entry>> ReadAfter(uint64_t c, uint64_t a,
                                                        uint64_t m,
                                                        uint32_t l) override {
    return reader_->ReadAfter(c, a, m, l);
  }
  absl::StatusOr<std::vector<storage::Entry>> ReadBefore(uint64_t c, uint64_t b,
                                                         uint64_t m,
                                                         uint32_t l) override {
    return reader_->ReadBefore(c, b, m, l);
  }
  absl::StatusOr<std::vector<storage::Entry>> ReadSeqs(
      uint64_t c, absl::Span<const uint64_t> seqs) override {
    return reader_->ReadSeqs(c, seqs);
  }
  absl::StatusOr<std::vector<uint64_t>> UsersSharingConversation(
      uint64_t v, absl::Span<const uint64_t> c) override {
    return reader_->UsersSharingConversation(v, c);
  }

 private:
  storage::ConversationReader* const reader_;
  std::atomic<bool> hold_{false};
  std::atomic<int> loads_{0};
  absl::Notification held_;
  absl::Notification release_;
};

class MembershipCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::StoreGroup setup = testing::MakeStoreGroup(db_, 3);
    users_ = setup.users;
    group_ = setup.group;
  }

  absl::StatusOr<MembersPtr> GetAndWait(uint64_t conversation_id) {
    return testing::AwaitResult<absl::StatusOr<MembersPtr>>(
        [&](auto done) { cache_.Get(conversation_id, std::move(done)); });
  }

  storage::FakeDatabase db_;
  GatedReader reader_{db_.reader()};
  WorkerPool pool_{WorkerPool::Options()};
  MembershipCache cache_{MembershipCache::Options(), &reader_, &pool_};
  std::vector<uint64_t> users_;
  uint64_t group_ = 0;
};

TEST_F(MembershipCacheTest, LoadsOnMissThenHits) {
  absl::StatusOr<MembersPtr> members = GetAndWait(group_);
  ASSERT_TRUE(members.ok());
  EXPECT_EQ((*members)->member_ids, std::vector<uint64_t>({users_[0], users_[1]}));
  EXPECT_EQ((*members)->joined_seq.at(users_[1]), 1u);
  EXPECT_FALSE((*members)->IsMember(users_[2]));
  ASSERT_TRUE(GetAndWait(group_).ok());
  EXPECT_EQ(reader_.loads(), 1);
  EXPECT_EQ(GetAndWait(group_ + 100).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MembershipCacheTest, ConcurrentMissesShareOneLoad) {
  reader_.Hold();
  std::atomic<int> answered{0};
  absl::Notification all;
  for (int i = 0; i < 5; ++i) {
    cache_.Get(group_, [&](absl::StatusOr<MembersPtr> r) {
      EXPECT_TRUE(r.ok());
      if (++answered == 5) all.Notify();
    });
  }
  reader_.WaitUntilHeld();
  reader_.Release();
  all.WaitForNotification();
  EXPECT_EQ(reader_.loads(), 1);
}

// A load that started before a member change may have read the old members:
// it answers its callers but is not cached, so the next send sees the
// change.
TEST_F(MembershipCacheTest, LoadRacingAChangeIsNotCached) {
  reader_.Hold();
  absl::Notification done;
  cache_.Get(group_, [&](absl::StatusOr<MembersPtr>) { done.Notify(); });
  reader_.WaitUntilHeld();
  absl::StatusOr<storage::MemberChange> change = db_.log()->AddMembers(
      group_, users_[0], {users_[2]}, 0, "", absl::Now());
  ASSERT_TRUE(change.ok());
  cache_.ApplyChange(*change);  // not cached yet: nothing to update
  reader_.Release();
  done.WaitForNotification();
  EXPECT_EQ(cache_.Find(group_), nullptr);
  absl::StatusOr<MembersPtr> fresh = GetAndWait(group_);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE((*fresh)->IsMember(users_[2]));
}

TEST_F(MembershipCacheTest, ChangesUpdateCachedMembers) {
  ASSERT_TRUE(GetAndWait(group_).ok());
  absl::StatusOr<storage::MemberChange> added = db_.log()->AddMembers(
      group_, users_[0], {users_[2]}, 0, "", absl::Now());
  cache_.ApplyChange(*added);
  EXPECT_TRUE(cache_.Find(group_)->IsMember(users_[2]));
  EXPECT_EQ(cache_.Find(group_)->joined_seq.at(users_[2]), 2u);
  EXPECT_EQ(cache_.Find(group_)->joined_seq.at(users_[1]), 1u);
  absl::StatusOr<storage::MemberChange> left =
      db_.log()->Leave(group_, users_[1], "", absl::Now());
  cache_.ApplyChange(*left);
  EXPECT_FALSE(cache_.Find(group_)->IsMember(users_[1]));
  EXPECT_EQ(reader_.loads(), 1);
}

TEST_F(MembershipCacheTest, StaysWithinItsBound) {
  MembershipCache::Options options;
  options.max_conversations = 4;
  MembershipCache small(options, &reader_, &pool_);
  std::vector<uint64_t> groups;
  for (int i = 0; i < 10; ++i) {
    groups.push_back(db_.log()
                         ->CreateGroup(users_[0], "g", {}, 0, "", absl::Now())
                         ->conversation.id);
    ASSERT_TRUE(small.GetBlocking(groups.back()).ok());
  }
  int cached = 0;
  for (uint64_t id : groups) cached += small.Find(id) != nullptr;
  EXPECT_LE(cached, 4);
  EXPECT_NE(small.Find(groups.back()), nullptr);
}

}  // namespace
}  // namespace im::message
