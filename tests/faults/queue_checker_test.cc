#include "tests/faults/queue_checker.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace im::faults {
namespace {

constexpr uint64_t kConversation = 7;
constexpr uint64_t kAlice = 1;
constexpr uint64_t kBob = 2;

LogEntry Message(uint64_t seq, uint64_t sender, const std::string& id) {
  return LogEntry{kConversation, seq, sender, id, true};
}

LogEntry Created() { return LogEntry{kConversation, 1, kAlice, "created", false}; }

SendRecord Send(uint64_t sender, const std::string& id, uint64_t order,
                SendOutcome outcome, uint64_t seq = 0) {
  SendRecord record;
  record.sender = sender;
  record.conversation = kConversation;
  record.client_msg_id = id;
  record.order = order;
  record.outcome = outcome;
  record.acked_seq = seq;
  return record;
}

// Both members page `log` and received exactly it, having been caught up.
std::vector<MemberView> Views(const std::vector<LogEntry>& log) {
  std::vector<MemberView> views(2);
  views[0].name = "alice";
  views[1].name = "bob";
  for (MemberView& view : views) {
    view.conversation = kConversation;
    view.history = log;
    view.received = log;
    view.required_through = log.back().seq;
  }
  return views;
}

class QueueCheckerTest : public ::testing::Test {
 protected:
  std::vector<LogEntry> log_ = {Created(), Message(2, kAlice, "a1"),
                                Message(3, kBob, "b1"), Message(4, kAlice, "a2")};
  std::vector<SendRecord> sends_ = {
      Send(kAlice, "a1", 1, SendOutcome::kAcked, 2),
      Send(kBob, "b1", 1, SendOutcome::kAcked, 3),
      Send(kAlice, "a2", 2, SendOutcome::kAcked, 4)};
};

TEST_F(QueueCheckerTest, CleanRunPasses) {
  const CheckReport report = CheckQueue(sends_, Views(log_));
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.sends, 3u);
  EXPECT_EQ(report.acked, 3u);
  EXPECT_TRUE(report.problems.empty());
}

TEST_F(QueueCheckerTest, AckedButMissingIsLost) {
  sends_.push_back(Send(kBob, "b2", 2, SendOutcome::kAcked, 5));
  const CheckReport report = CheckQueue(sends_, Views(log_));
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.lost, 1u);
}

TEST_F(QueueCheckerTest, StoredTwiceIsDuplicated) {
  log_.push_back(Message(5, kAlice, "a2"));
  const CheckReport report = CheckQueue(sends_, Views(log_));
  EXPECT_EQ(report.duplicated, 1u);
  EXPECT_FALSE(report.ok());
}

TEST_F(QueueCheckerTest, NeverSentIsUnexpected) {
  log_.push_back(Message(5, kBob, "ghost"));
  const CheckReport report = CheckQueue(sends_, Views(log_));
  EXPECT_EQ(report.unexpected, 1u);
  EXPECT_FALSE(report.ok());
}

TEST_F(QueueCheckerTest, RefusedButStored) {
  sends_[1].outcome = SendOutcome::kFailed;
  const CheckReport report = CheckQueue(sends_, Views(log_));
  EXPECT_EQ(report.failed_but_stored, 1u);
  EXPECT_FALSE(report.ok());
}

TEST_F(QueueCheckerTest, UnknownOutcomeMayGoEitherWayButNotTwice) {
  sends_.push_back(Send(kBob, "b2", 2, SendOutcome::kUnknown));
  sends_.push_back(Send(kBob, "b3", 3, SendOutcome::kUnknown));
  log_.push_back(Message(5, kBob, "b3"));
  CheckReport report = CheckQueue(sends_, Views(log_));
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.unknown, 2u);
  EXPECT_EQ(report.recovered, 1u);

  log_.push_back(Message(6, kBob, "b3"));
  report = CheckQueue(sends_, Views(log_));
  EXPECT_EQ(report.duplicated, 1u);
}

TEST_F(QueueCheckerTest, AckWithAnotherSeq) {
  sends_[2].acked_seq = 9;
  EXPECT_EQ(CheckQueue(sends_, Views(log_)).ack_seq_mismatches, 1u);
}

TEST_F(QueueCheckerTest, SeqGap) {
  log_[3].seq = 5;
  sends_[2].acked_seq = 5;
  const CheckReport report = CheckQueue(sends_, Views(log_));
  EXPECT_EQ(report.seq_gaps, 1u);
  EXPECT_FALSE(report.ok());
}

TEST_F(QueueCheckerTest, SenderOrderInverted) {
  std::swap(sends_[0].order, sends_[2].order);
  const CheckReport report = CheckQueue(sends_, Views(log_));
  EXPECT_EQ(report.order_violations, 1u);
  // Unordered sends (e.g. concurrent unary calls) are not checked.
  sends_[0].ordered = false;
  EXPECT_EQ(CheckQueue(sends_, Views(log_)).order_violations, 0u);
}

TEST_F(QueueCheckerTest, MembersPageDifferentHistories) {
  std::vector<MemberView> views = Views(log_);
  views[1].history.pop_back();
  views[1].received.pop_back();
  const CheckReport report = CheckQueue(sends_, views);
  EXPECT_EQ(report.history_divergences, 1u);
  EXPECT_EQ(report.lost, 0u) << "the longest history is the reference";
  EXPECT_FALSE(report.ok());
}

TEST_F(QueueCheckerTest, DeliveryMissingDuplicatedOrReordered) {
  std::vector<MemberView> views = Views(log_);
  views[0].received.pop_back();                      // missing
  views[1].received.push_back(views[1].received[2]);  // duplicate
  EXPECT_EQ(CheckQueue(sends_, views).delivery_mismatches, 2u);

  views = Views(log_);
  std::swap(views[0].received[1], views[0].received[2]);  // out of order
  EXPECT_EQ(CheckQueue(sends_, views).delivery_mismatches, 1u);

  views = Views(log_);
  views[0].received.clear();
  views[0].has_received = false;  // history only: nothing to compare
  EXPECT_TRUE(CheckQueue(sends_, views).ok());
}

TEST_F(QueueCheckerTest, DeliveryMayStopShortOnlyAfterWhatWasRequired) {
  std::vector<MemberView> views = Views(log_);
  views[0].received.pop_back();  // seq 4 committed after it stopped
  views[0].required_through = 3;
  EXPECT_TRUE(CheckQueue(sends_, views).ok());
  views[0].required_through = 4;
  EXPECT_EQ(CheckQueue(sends_, views).delivery_mismatches, 1u);
}

}  // namespace
}  // namespace im::faults
