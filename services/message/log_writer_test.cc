#include "services/message/log_writer.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "services/message/testing/store_fixture.h"
#include "storage/fake/fake_database.h"

namespace im::message {
namespace {

using ::im::message::v1::MemberEvent;

// Passes calls through to the fake, counting batches; can hold the first
// batch until released, and can report failure after really committing.
class ObservedLog final : public storage::ConversationLog {
 public:
  explicit ObservedLog(storage::ConversationLog* log) : log_(log) {}

  void HoldFirstBatch() { hold_ = true; }
  void WaitUntilHeld() { held_.WaitForNotification(); }
  void Release() { release_.Notify(); }
  // The next AppendMessages stores its batch and then fails UNAVAILABLE, as
  // when the commit's reply is lost.
  void LoseNextCommitReply() { lose_reply_ = true; }

  std::vector<size_t> batch_sizes() {
    absl::MutexLock lock(&mu_);
    return batch_sizes_;
  }

  absl::StatusOr<std::vector<storage::AppendOutcome>> AppendMessages(
      absl::Span<const storage::AppendRequest> batch, absl::Time now) override {
    {
      absl::MutexLock lock(&mu_);
      batch_sizes_.push_back(batch.size());
    }
    if (hold_.exchange(false)) {
      held_.Notify();
      release_.WaitForNotification();
    }
    auto result = log_->AppendMessages(batch, now);
    if (lose_reply_.exchange(false)) {
      return absl::UnavailableError("lost connection during commit");
    }
    return result;
  }
  absl::StatusOr<storage::MemberChange> CreateGroup(
      uint64_t creator, const std::string& title,
      absl::Span<const uint64_t> members, uint32_t max_members,
      const std::string& client_msg_id, absl::Time now) override {
    return log_->CreateGroup(creator, title, members, max_members,
                             client_msg_id, now);
  }
  absl::StatusOr<storage::DirectResult> GetOrCreateDirect(
      uint64_t a, uint64_t b, const std::string& client_msg_id,
      absl::Time now) override {
    return log_->GetOrCreateDirect(a, b, client_msg_id, now);
  }
  absl::StatusOr<storage::MemberChange> AddMembers(
      uint64_t conversation_id, uint64_t actor,
      absl::Span<const uint64_t> users, uint32_t max_members,
      const std::string& client_msg_id, absl::Time now) override {
    return log_->AddMembers(conversation_id, actor, users, max_members,
                            client_msg_id, now);
  }
  absl::StatusOr<storage::MemberChange> RemoveMember(
      uint64_t conversation_id, uint64_t actor, uint64_t user,
      const std::string& client_msg_id, absl::Time now) override {
    return log_->RemoveMember(conversation_id, actor, user, client_msg_id,
                              now);
  }
  absl::StatusOr<storage::MemberChange> Leave(uint64_t conversation_id,
                                              uint64_t user,
                                              const std::string& client_msg_id,
                                              absl::Time now) override {
    return log_->Leave(conversation_id, user, client_msg_id, now);
  }
  absl::StatusOr<storage::MemberChange> SetRole(
      uint64_t conversation_id, uint64_t actor, uint64_t user,
      storage::MemberRole role, const std::string& client_msg_id,
      absl::Time now) override {
    return log_->SetRole(conversation_id, actor, user, role, client_msg_id,
                         now);
  }

 private:
  storage::ConversationLog* const log_;
  std::atomic<bool> hold_{false};
  std::atomic<bool> lose_reply_{false};
  absl::Notification held_;
  absl::Notification release_;
  absl::Mutex mu_;
  std::vector<size_t> batch_sizes_ ABSL_GUARDED_BY(mu_);
};

// Records what was published, in order.
class RecordingPublisher final : public EntryPublisher {
 public:
  struct Published {
    storage::Entry entry;
    std::vector<uint64_t> members;
    std::vector<uint64_t> also_to;
  };
  void PublishEntry(storage::Entry entry, const ConversationMembers& members,
                    absl::Span<const uint64_t> also_to) override {
    absl::MutexLock lock(&mu_);
    published_.push_back(
        {std::move(entry), members.member_ids, {also_to.begin(), also_to.end()}});
  }
  std::vector<Published> published() {
    absl::MutexLock lock(&mu_);
    return published_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Published> published_ ABSL_GUARDED_BY(mu_);
};

class LogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::StoreGroup setup = testing::MakeStoreGroup(db_, 3);
    users_ = setup.users;
    group_ = setup.group;
  }

  void StartWriter(LogWriter::Options options = LogWriter::Options()) {
    options.first_backoff = absl::Milliseconds(1);
    writer_ = *LogWriter::Create(options, &log_, &members_, &publisher_);
  }

  storage::AppendRequest Request(uint64_t sender, const std::string& id) {
    storage::AppendRequest request;
    request.conversation_id = group_;
    request.sender_id = sender;
    request.client_msg_id = id;
    request.message.set_text(absl::StrCat("text ", id));
    return request;
  }

  // Appends and waits for the result.
  absl::StatusOr<SendResult> AppendAndWait(storage::AppendRequest request) {
    return testing::AwaitResult<absl::StatusOr<SendResult>>([&](auto done) {
      writer_->Append(std::move(request), std::move(done));
    });
  }

  storage::FakeDatabase db_;
  ObservedLog log_{db_.log()};
  WorkerPool pool_{WorkerPool::Options()};
  MembershipCache members_{MembershipCache::Options(), db_.reader(), &pool_};
  RecordingPublisher publisher_;
  std::vector<uint64_t> users_;
  uint64_t group_ = 0;
  std::unique_ptr<LogWriter> writer_;
};

// Requests queued while a batch commits go out together in the next one,
// with consecutive seqs in request order, acknowledged and then published
// in seq order.
TEST_F(LogWriterTest, QueuedRequestsShareOneGroupCommit) {
  LogWriter::Options options;
  options.shards = 1;
  StartWriter(options);
  log_.HoldFirstBatch();
  absl::Mutex mu;
  std::vector<uint64_t> acked;
  absl::Notification all_done;
  constexpr int kRequests = 50;
  for (int i = 0; i < kRequests; ++i) {
    writer_->Append(Request(users_[i % 2], absl::StrCat("m", i)),
                    [&, i](absl::StatusOr<SendResult> result) {
                      ASSERT_TRUE(result.ok()) << result.status();
                      absl::MutexLock lock(&mu);
                      acked.push_back(result->seq);
                      EXPECT_EQ(result->seq, static_cast<uint64_t>(i) + 2);
                      if (acked.size() == kRequests) all_done.Notify();
                    });
    if (i == 0) log_.WaitUntilHeld();
  }
  log_.Release();
  all_done.WaitForNotification();
  writer_->Stop();
  EXPECT_EQ(log_.batch_sizes(), std::vector<size_t>({1, kRequests - 1}));
  std::vector<RecordingPublisher::Published> published = publisher_.published();
  ASSERT_EQ(published.size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(published[i].entry.seq(), static_cast<uint64_t>(i) + 2);
    EXPECT_EQ(published[i].members, std::vector<uint64_t>({users_[0], users_[1]}));
  }
}

// Retryable failures are retried with the same batch; the request succeeds.
TEST_F(LogWriterTest, RetriesUnavailableBatches) {
  StartWriter();
  db_.InjectFailure(absl::UnavailableError("database down"), 2);
  absl::StatusOr<SendResult> result = AppendAndWait(Request(users_[0], "r1"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->seq, 2u);
  EXPECT_FALSE(result->duplicate);
  EXPECT_EQ(log_.batch_sizes().size(), 3u);
}

// When the attempts run out the requests fail UNAVAILABLE and nothing is
// stored or published.
TEST_F(LogWriterTest, GivesUpAfterMaxAttemptsWithUnavailable) {
  LogWriter::Options options;
  options.max_attempts = 3;
  StartWriter(options);
  db_.InjectFailure(absl::AbortedError("deadlock"), -1);
  absl::StatusOr<SendResult> result = AppendAndWait(Request(users_[0], "r1"));
  db_.ClearFailure();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(result.status().message().find("same client_msg_id"),
            std::string::npos);
  EXPECT_EQ(log_.batch_sizes().size(), 3u);
  EXPECT_TRUE(publisher_.published().empty());
  EXPECT_EQ(db_.reader()->GetConversation(group_)->last_seq, 1u);
}

// A commit whose reply was lost is retried; the retry finds the entries
// already stored under this commit's time: acknowledged as new (not
// duplicate) and published exactly once.
TEST_F(LogWriterTest, LostCommitReplyIsAckedAsNewAndPublishedOnce) {
  StartWriter();
  log_.LoseNextCommitReply();
  absl::StatusOr<SendResult> result = AppendAndWait(Request(users_[0], "r1"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->seq, 2u);
  EXPECT_FALSE(result->duplicate);
  writer_->Stop();
  std::vector<RecordingPublisher::Published> published = publisher_.published();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].entry.seq(), 2u);
  // A real retry by the client later is a duplicate and not published.
  StartWriter();
  absl::StatusOr<SendResult> retry = AppendAndWait(Request(users_[0], "r1"));
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->seq, 2u);
  writer_->Stop();
  EXPECT_EQ(publisher_.published().size(), 1u);
}

// Two requests with the same id in one batch: the first stores, the second
// is its duplicate; one entry is published.
TEST_F(LogWriterTest, SameIdTwiceInOneBatch) {
  LogWriter::Options options;
  options.shards = 1;
  StartWriter(options);
  log_.HoldFirstBatch();
  absl::Notification first_done;
  writer_->Append(Request(users_[0], "warmup"),
                  [&](absl::StatusOr<SendResult>) { first_done.Notify(); });
  log_.WaitUntilHeld();
  std::vector<absl::StatusOr<SendResult>> results(2);
  absl::Notification both;
  std::atomic<int> count{0};
  for (int i = 0; i < 2; ++i) {
    writer_->Append(Request(users_[1], "twice"),
                    [&, i](absl::StatusOr<SendResult> r) {
                      results[i] = std::move(r);
                      if (++count == 2) both.Notify();
                    });
  }
  log_.Release();
  both.WaitForNotification();
  ASSERT_TRUE(results[0].ok() && results[1].ok());
  EXPECT_EQ(results[0]->seq, 3u);
  EXPECT_FALSE(results[0]->duplicate);
  EXPECT_EQ(results[1]->seq, 3u);
  EXPECT_TRUE(results[1]->duplicate);
  writer_->Stop();
  EXPECT_EQ(publisher_.published().size(), 2u);  // warmup and "twice"
}

// One bad request fails alone; the rest of its batch is stored.
TEST_F(LogWriterTest, NonMemberFailsAloneInItsBatch) {
  LogWriter::Options options;
  options.shards = 1;
  StartWriter(options);
  log_.HoldFirstBatch();
  writer_->Append(Request(users_[0], "warmup"), [](absl::StatusOr<SendResult>) {});
  log_.WaitUntilHeld();
  absl::StatusOr<SendResult> stranger, member;
  absl::Notification a, b;
  writer_->Append(Request(users_[2], "x"), [&](absl::StatusOr<SendResult> r) {
    stranger = std::move(r);
    a.Notify();
  });
  writer_->Append(Request(users_[1], "y"), [&](absl::StatusOr<SendResult> r) {
    member = std::move(r);
    b.Notify();
  });
  log_.Release();
  a.WaitForNotification();
  b.WaitForNotification();
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(member.ok());
  EXPECT_EQ(member->seq, 3u);
}

// A full shard queue refuses at once; Stop commits what is queued and then
// refuses with UNAVAILABLE.
TEST_F(LogWriterTest, FullQueueRefusesAndStopDrains) {
  LogWriter::Options options;
  options.shards = 1;
  options.max_queued_per_shard = 2;
  StartWriter(options);
  log_.HoldFirstBatch();
  std::atomic<int> ok{0};
  writer_->Append(Request(users_[0], "a"),
                  [&](absl::StatusOr<SendResult> r) { ok += r.ok(); });
  log_.WaitUntilHeld();
  for (const char* id : {"b", "c"}) {
    writer_->Append(Request(users_[0], id),
                    [&](absl::StatusOr<SendResult> r) { ok += r.ok(); });
  }
  absl::Status refused;
  writer_->Append(Request(users_[0], "d"),
                  [&](absl::StatusOr<SendResult> r) { refused = r.status(); });
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  log_.Release();
  writer_->Stop();
  EXPECT_EQ(ok.load(), 3);
  absl::Status after_stop;
  writer_->Append(Request(users_[0], "e"),
                  [&](absl::StatusOr<SendResult> r) { after_stop = r.status(); });
  EXPECT_EQ(after_stop.code(), absl::StatusCode::kUnavailable);
}

// Member changes run on the conversation's shard: the cache is updated
// before the entry is published, and a removed member is told.
TEST_F(LogWriterTest, MemberChangesUpdateTheCacheBeforePublishing) {
  StartWriter();
  ASSERT_TRUE(members_.GetBlocking(group_).ok());  // cached
  absl::Notification added;
  writer_->ChangeMembers(
      group_,
      [&](storage::ConversationLog& log, const std::string& id, absl::Time now) {
        return log.AddMembers(group_, users_[0], {users_[2]}, 0, id, now);
      },
      [&](absl::StatusOr<storage::MemberChange> change) {
        EXPECT_TRUE(change.ok());
        added.Notify();
      });
  added.WaitForNotification();
  MembersPtr cached = members_.Find(group_);
  ASSERT_NE(cached, nullptr);
  EXPECT_TRUE(cached->IsMember(users_[2]));
  EXPECT_EQ(cached->joined_seq.at(users_[2]), 2u);

  absl::Notification removed;
  writer_->ChangeMembers(
      group_,
      [&](storage::ConversationLog& log, const std::string& id, absl::Time now) {
        return log.RemoveMember(group_, users_[0], users_[1], id, now);
      },
      [&](absl::StatusOr<storage::MemberChange>) { removed.Notify(); });
  removed.WaitForNotification();
  writer_->Stop();
  std::vector<RecordingPublisher::Published> published = publisher_.published();
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0].entry.member_event().kind(), MemberEvent::KIND_ADDED);
  EXPECT_EQ(published[0].members,
            std::vector<uint64_t>({users_[0], users_[1], users_[2]}));
  EXPECT_EQ(published[1].entry.member_event().kind(), MemberEvent::KIND_REMOVED);
  EXPECT_EQ(published[1].members, std::vector<uint64_t>({users_[0], users_[2]}));
  EXPECT_EQ(published[1].also_to, std::vector<uint64_t>({users_[1]}));
  EXPECT_FALSE(members_.Find(group_)->IsMember(users_[1]));
}

}  // namespace
}  // namespace im::message
