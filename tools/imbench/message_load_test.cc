#include "tools/imbench/message_load.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace im::imbench {
namespace {

namespace v1 = ::im::message::v1;
using client::SendOutcome;

constexpr uint64_t kConversation = 42;

// One sender (on stream 0) into a conversation both streams receive; the
// events a real run would bring are fed by hand.
class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MessageLoadOptions options;
    options.duration = absl::Seconds(1);
    load_ = std::make_unique<MessageLoad>(options);
    for (int i = 0; i < 2; ++i) {
      streams_.push_back(load_->Callback(load_->AddStream()));
    }
    load_->AddSender(0, nullptr, kConversation, /*rate=*/10, /*streams=*/2);
  }

  // Sends n messages, acked as seqs first_seq, first_seq + 1, ...
  std::vector<v1::Entry> SendAndAck(int n, uint64_t first_seq) {
    std::vector<v1::Entry> entries;
    for (int i = 0; i < n; ++i) {
      std::optional<MessageLoad::PreparedSend> send =
          load_->PrepareSend(0, absl::Now());
      EXPECT_TRUE(send.has_value());
      SendOutcome ack;
      ack.state = SendOutcome::State::kAcked;
      ack.client_msg_id = send->client_msg_id;
      ack.conversation_id = kConversation;
      ack.seq = first_seq + i;
      streams_[0](ack);
      v1::Entry entry;
      entry.set_conversation_id(kConversation);
      entry.set_seq(first_seq + i);
      *entry.mutable_message() = send->message;
      entries.push_back(entry);
    }
    return entries;
  }

  std::string Failures() {
    Report report;
    load_->Verify(report);
    return absl::StrJoin(report.failures, "; ");
  }

  std::unique_ptr<MessageLoad> load_;
  std::vector<client::ChatSession::EventCallback> streams_;
};

TEST_F(VerifyTest, EveryMessageOnceOnEveryStreamPasses) {
  std::vector<v1::Entry> entries = SendAndAck(3, 5);
  for (auto& stream : streams_) {
    for (const v1::Entry& entry : entries) stream(entry);
  }
  EXPECT_EQ(Failures(), "");
}

TEST_F(VerifyTest, AMissingDeliveryIsLoss) {
  std::vector<v1::Entry> entries = SendAndAck(3, 5);
  for (const v1::Entry& entry : entries) streams_[0](entry);
  streams_[1](entries[0]);
  streams_[1](entries[1]);
  EXPECT_EQ(Failures(),
            "1 deliveries of acked messages never arrived (loss)");
}

TEST_F(VerifyTest, ADeliveryTwiceIsADuplicateAndOutOfOrder) {
  std::vector<v1::Entry> entries = SendAndAck(2, 5);
  for (auto& stream : streams_) {
    for (const v1::Entry& entry : entries) stream(entry);
  }
  streams_[1](entries[1]);
  const std::string failures = Failures();
  EXPECT_NE(failures.find("1 deliveries arrived more than once"),
            std::string::npos) << failures;
  EXPECT_NE(failures.find("stream 1 got seq 6 after 6"), std::string::npos)
      << failures;
}

TEST_F(VerifyTest, ASkippedSeqIsAGap) {
  std::vector<v1::Entry> entries = SendAndAck(3, 5);
  for (const v1::Entry& entry : entries) streams_[0](entry);
  streams_[1](entries[0]);
  streams_[1](entries[2]);
  streams_[1](entries[1]);
  const std::string failures = Failures();
  EXPECT_NE(failures.find("stream 1 got seq 7 after 5"), std::string::npos)
      << failures;
}

TEST_F(VerifyTest, AnUnackedSendIsReported) {
  ASSERT_TRUE(load_->PrepareSend(0, absl::Now()).has_value());
  EXPECT_EQ(Failures(), "1 sends neither acked nor failed after the drain");
}

TEST_F(VerifyTest, TwoMessagesAckedWithOneSeqAreReported) {
  std::vector<v1::Entry> entries = SendAndAck(1, 9);
  std::vector<v1::Entry> again = SendAndAck(1, 9);
  for (auto& stream : streams_) {
    stream(entries[0]);
    stream(again[0]);
  }
  EXPECT_NE(Failures().find("1 acks reused a seq of another message"),
            std::string::npos);
}

}  // namespace
}  // namespace im::imbench
