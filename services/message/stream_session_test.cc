#include "services/message/stream_session.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "services/message/testing/store_fixture.h"
#include "storage/fake/fake_database.h"

namespace im::message {
namespace {

// Records writes; completes them only when the test pumps.
class ManualTransport final : public SessionTransport {
 public:
  void set_session(StreamSession* session) { session_ = session; }
  void StartWrite(FramePtr frame) override {
    absl::MutexLock lock(&mu_);
    written_.push_back(frame->frame());
    pending_ = true;
  }
  void Finish(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(finished_.has_value()) << "Finish called twice";
    EXPECT_FALSE(pending_) << "Finish with a write outstanding";
    finished_ = status;
  }
  // Completes outstanding writes until none is left.
  void Pump() {
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (!pending_) return;
        pending_ = false;
      }
      session_->OnWriteDone(true);
    }
  }
  // Pumps until `seq` of `conversation_id` was written (or time runs out).
  bool PumpUntil(uint64_t conversation_id, uint64_t seq) {
    for (int i = 0; i < 2000; ++i) {
      Pump();
      for (uint64_t s : Seqs(conversation_id)) {
        if (s >= seq) return true;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    return false;
  }
  bool PumpUntilReady() {
    for (int i = 0; i < 2000; ++i) {
      Pump();
      {
        absl::MutexLock lock(&mu_);
        for (const auto& frame : written_) {
          if (frame.has_ready()) return true;
        }
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    return false;
  }
  std::vector<uint64_t> Seqs(uint64_t conversation_id) {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> seqs;
    for (const auto& frame : written_) {
      if (frame.has_entry() &&
          frame.entry().conversation_id() == conversation_id) {
        seqs.push_back(frame.entry().seq());
      }
    }
    return seqs;
  }
  std::optional<absl::Status> finished() {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

 private:
  StreamSession* session_ = nullptr;
  absl::Mutex mu_;
  std::vector<v1::ServerFrame> written_ ABSL_GUARDED_BY(mu_);
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> finished_ ABSL_GUARDED_BY(mu_);
};

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> seqs;
  for (uint64_t s = first; s <= last; ++s) seqs.push_back(s);
  return seqs;
}

class StreamSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::StoreGroup setup = testing::MakeStoreGroup(db_, 2);
    users_ = setup.users;
    group_ = setup.group;
    Append(10);  // seqs 2..11
  }

  // Stores `count` messages without publishing them.
  void Append(int count) {
    std::vector<storage::AppendRequest> batch;
    for (int i = 0; i < count; ++i) {
      storage::AppendRequest request;
      request.conversation_id = group_;
      request.sender_id = users_[0];
      request.client_msg_id = absl::StrCat("m", next_++);
      request.message.set_text("x");
      batch.push_back(request);
    }
    ASSERT_TRUE(db_.log()->AppendMessages(batch, absl::Now()).ok());
  }

  FramePtr EntryFrame(uint64_t seq) {
    auto entries = db_.reader()->ReadSeqs(group_, {seq});
    EXPECT_TRUE(entries.ok() && entries->size() == 1);
    v1::ServerFrame frame;
    *frame.mutable_entry() = (*entries)[0];
    return MakeFrame(std::move(frame));
  }

  std::shared_ptr<StreamSession> Open(const StreamSession::Options& options,
                                      const v1::Resume& resume) {
    StreamSession::Identity identity;
    identity.user_id = users_[1];
    auto session = std::make_shared<StreamSession>(options, identity,
                                                   db_.reader(), &pool_,
                                                   &transport_);
    transport_.set_session(session.get());
    session->Start(resume);
    return session;
  }

  storage::FakeDatabase db_;
  WorkerPool pool_{WorkerPool::Options()};
  ManualTransport transport_;
  std::vector<uint64_t> users_;
  uint64_t group_ = 0;
  int next_ = 0;
};

// A live entry beyond the next one opens a gap that is read from the log;
// duplicates are dropped.
TEST_F(StreamSessionTest, GapBeforeALiveEntryIsFilledFromTheLog) {
  auto session = Open(StreamSession::Options(), v1::Resume());  // live only
  ASSERT_TRUE(transport_.PumpUntilReady());
  Append(4);  // 12..15, not published
  session->OnEntry(EntryFrame(15));
  ASSERT_TRUE(transport_.PumpUntil(group_, 15));
  session->OnEntry(EntryFrame(13));  // duplicate
  Append(1);
  session->OnEntry(EntryFrame(16));
  ASSERT_TRUE(transport_.PumpUntil(group_, 16));
  EXPECT_EQ(transport_.Seqs(group_), Range(12, 16));
}

// Live entries arriving out of order, more than the hold-back bound, still
// come out once each and in order.
TEST_F(StreamSessionTest, OutOfOrderLiveEntriesBeyondTheHoldBound) {
  StreamSession::Options options;
  options.max_held_live_entries = 2;
  options.replay_page_size = 3;
  auto session = Open(options, v1::Resume());
  ASSERT_TRUE(transport_.PumpUntilReady());
  Append(10);  // 12..21
  for (uint64_t seq = 21; seq >= 12; --seq) session->OnEntry(EntryFrame(seq));
  ASSERT_TRUE(transport_.PumpUntil(group_, 21));
  EXPECT_EQ(transport_.Seqs(group_), Range(12, 21));
}

// Resume: replay from the cursor, then live, with entries published during
// the replay neither lost nor repeated.
TEST_F(StreamSessionTest, ReplayThenLiveWithEntriesPublishedMeanwhile) {
  StreamSession::Options options;
  options.replay_page_size = 2;
  v1::Resume resume;
  (*resume.mutable_cursors())[group_] = 4;
  auto session = Open(options, resume);
  // Published while the session loads and replays (seqs 12, 13).
  Append(2);
  session->OnEntry(EntryFrame(12));
  session->OnEntry(EntryFrame(13));
  ASSERT_TRUE(transport_.PumpUntilReady());
  ASSERT_TRUE(transport_.PumpUntil(group_, 13));
  EXPECT_EQ(transport_.Seqs(group_), Range(5, 13));
}

// A client that stops reading: the queue never exceeds its bound and the
// stream finishes RESOURCE_EXHAUSTED once the write in flight completes.
TEST_F(StreamSessionTest, OverflowFinishesAfterTheWriteInFlight) {
  StreamSession::Options options;
  options.max_queued_frames = 4;
  auto session = Open(options, v1::Resume());
  ASSERT_TRUE(transport_.PumpUntilReady());
  Append(10);
  // No pumping: the first entry is in flight, three more fit, then overflow.
  for (uint64_t seq = 12; seq <= 21; ++seq) session->OnEntry(EntryFrame(seq));
  EXPECT_TRUE(session->closed());
  EXPECT_FALSE(transport_.finished().has_value());
  transport_.Pump();
  ASSERT_TRUE(transport_.finished().has_value());
  EXPECT_EQ(transport_.finished()->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(transport_.Seqs(group_), std::vector<uint64_t>({12}));
}

// The last entry of a conversation was never published here (another
// node's notification lost): a log position read later delivers it once,
// and the late live copy is dropped.
TEST_F(StreamSessionTest, LogPositionDeliversEntriesNeverPublished) {
  auto session = Open(StreamSession::Options(), v1::Resume());  // live only
  ASSERT_TRUE(transport_.PumpUntilReady());
  Append(4);  // 12..15, not published
  session->OnLogPosition(group_, 15, nullptr);
  ASSERT_TRUE(transport_.PumpUntil(group_, 15));
  session->OnEntry(EntryFrame(15));
  session->OnLogPosition(group_, 13, nullptr);  // older read: nothing
  Append(1);
  session->OnEntry(EntryFrame(16));
  ASSERT_TRUE(transport_.PumpUntil(group_, 16));
  EXPECT_EQ(transport_.Seqs(group_), Range(12, 16));
}

// The same for a conversation the stream resumed with a cursor.
TEST_F(StreamSessionTest, LogPositionAfterResumeFillsFromTheCursor) {
  v1::Resume resume;
  (*resume.mutable_cursors())[group_] = 11;
  auto session = Open(StreamSession::Options(), resume);
  ASSERT_TRUE(transport_.PumpUntilReady());
  Append(3);  // 12..14
  session->OnLogPosition(group_, 14, nullptr);
  ASSERT_TRUE(transport_.PumpUntil(group_, 14));
  EXPECT_EQ(transport_.Seqs(group_), Range(12, 14));
}

// Added to a group after the stream started, with every notification
// lost: the membership read with the position delivers the group from the
// entry that added the user.
TEST_F(StreamSessionTest, LogPositionWithMembershipDeliversAGroupJoinedLater) {
  auto session = Open(StreamSession::Options(), v1::Resume());
  ASSERT_TRUE(transport_.PumpUntilReady());
  auto other = db_.log()->CreateGroup(users_[0], "h", {}, 0, "", absl::Now());
  ASSERT_TRUE(other.ok());
  const uint64_t group = other->conversation.id;  // seq 1: created
  ASSERT_TRUE(db_.log()
                  ->AddMembers(group, users_[0], {users_[1]}, 0, "", absl::Now())
                  .ok());  // seq 2: added
  storage::AppendRequest request;
  request.conversation_id = group;
  request.sender_id = users_[0];
  request.client_msg_id = "late";
  request.message.set_text("x");
  ASSERT_TRUE(db_.log()->AppendMessages({request}, absl::Now()).ok());  // 3
  absl::StatusOr<storage::MemberRecord> member =
      db_.reader()->GetMember(group, users_[1]);
  ASSERT_TRUE(member.ok());
  ASSERT_EQ(member->joined_seq, 2u);
  session->OnLogPosition(group, 3, &*member);
  ASSERT_TRUE(transport_.PumpUntil(group, 3));
  EXPECT_EQ(transport_.Seqs(group), Range(2, 3));
}

// Removed meanwhile: the stream gets up to the removal entry, nothing later.
TEST_F(StreamSessionTest, LogPositionStopsAtTheRemoval) {
  auto session = Open(StreamSession::Options(), v1::Resume());
  ASSERT_TRUE(transport_.PumpUntilReady());
  Append(1);  // 12
  ASSERT_TRUE(
      db_.log()->RemoveMember(group_, users_[0], users_[1], "", absl::Now()).ok());
  Append(2);  // 14, 15
  absl::StatusOr<storage::MemberRecord> member =
      db_.reader()->GetMember(group_, users_[1]);
  ASSERT_TRUE(member.ok());
  ASSERT_EQ(member->left_seq, std::optional<uint64_t>(13));
  session->OnLogPosition(group_, 15, &*member);
  ASSERT_TRUE(transport_.PumpUntil(group_, 13));
  absl::SleepFor(absl::Milliseconds(50));
  transport_.Pump();
  EXPECT_EQ(transport_.Seqs(group_), Range(12, 13));
}

}  // namespace
}  // namespace im::message
