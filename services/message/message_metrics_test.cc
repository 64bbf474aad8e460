#include "services/message/message_metrics.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "observability/metric_reader.h"
#include "services/message/message_node_metrics.h"
#include "services/message/stream_session.h"
#include "services/message/testing/message_test_env.h"
#include "storage/fake/fake_database.h"

namespace im::message {
namespace {

using observability::FindSample;
using testing::ChatClient;
using testing::MessageTestEnv;

// A transport whose writes never complete: frames pile up in the session.
class StuckTransport final : public SessionTransport {
 public:
  void StartWrite(FramePtr) override {}
  void Finish(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    finished_ = status;
  }
  std::optional<absl::Status> finished() {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

 private:
  absl::Mutex mu_;
  std::optional<absl::Status> finished_ ABSL_GUARDED_BY(mu_);
};

FramePtr ReplyFrame(uint64_t request_id) {
  v1::ServerFrame frame;
  frame.mutable_ack()->set_request_id(request_id);
  return MakeFrame(std::move(frame));
}

class MessageMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MessageServiceOptions options = MessageTestEnv::DefaultOptions();
    options.writer.metrics = &metrics_;
    options.stream.metrics = &metrics_;
    env_ = MessageTestEnv::Start(std::make_unique<storage::FakeDatabase>(),
                                 options);
    ASSERT_NE(env_, nullptr);
    node_ = MessageNodeMetrics(env_->service());
  }

  double Recorded(const std::string& name) {
    return FindSample(registry_, name).value_or(-1);
  }
  double Sampled(const std::string& name) {
    return FindSample(*node_, name).value_or(-1);
  }

  prometheus::Registry registry_;
  MessageMetrics metrics_{registry_};
  std::unique_ptr<MessageTestEnv> env_;
  std::shared_ptr<observability::SampledMetrics> node_;
};

TEST_F(MessageMetricsTest, SendsCommitsAndLiveDeliveries) {
  const uint64_t alice = env_->CreateUser("alice");
  const uint64_t bob = env_->CreateUser("bob");
  const std::string alice_token = env_->Token(alice, 101);
  const std::string bob_token = env_->Token(bob, 201);
  const uint64_t conversation = env_->Direct(alice_token, bob);
  ASSERT_NE(conversation, 0u);
  ChatClient alice_chat(*env_, alice_token);
  ChatClient bob_chat(*env_, bob_token);
  ASSERT_TRUE(alice_chat.AwaitReady());
  ASSERT_TRUE(bob_chat.AwaitReady());
  EXPECT_EQ(Sampled("im_message_live_streams"), 2);
  EXPECT_EQ(Sampled("im_message_devices_online"), 2);

  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(alice_chat.Send(i, conversation, absl::StrCat("m-", i), "hi"));
    ASSERT_TRUE(alice_chat.AwaitAck(i).has_value());
  }
  // A retry of m-1: answered with seq 2 again, nothing stored.
  ASSERT_TRUE(alice_chat.Send(4, conversation, "m-1", "hi"));
  std::optional<v1::SendAck> retry = alice_chat.AwaitAck(4);
  ASSERT_TRUE(retry.has_value());
  EXPECT_TRUE(retry->duplicate());
  ASSERT_TRUE(alice_chat.AwaitSeq(conversation, 4));
  ASSERT_TRUE(bob_chat.AwaitSeq(conversation, 4));
  // A drained node ends each stream after its last write completed.
  env_->service().Drain();
  EXPECT_EQ(alice_chat.AwaitEnd().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(bob_chat.AwaitEnd().error_code(), grpc::StatusCode::UNAVAILABLE);

  EXPECT_EQ(Sampled("im_message_accepted_total"), 3);
  EXPECT_EQ(Sampled("im_message_duplicates_total"), 1);
  EXPECT_EQ(Sampled("im_message_send_failures_total"), 0);
  EXPECT_EQ(Recorded("im_message_commit_batch_size_sum"), 4);
  EXPECT_EQ(Recorded("im_message_send_commit_seconds_count"), 4);
  // Seqs 2-4 on both streams, all published live.
  EXPECT_EQ(Recorded("im_message_delivered_total"), 6);
  EXPECT_EQ(Recorded("im_message_commit_deliver_seconds_count"), 6);
  EXPECT_EQ(Recorded("im_message_overflow_cuts_total"), 0);
}

TEST_F(MessageMetricsTest, QueueDepthAndOverflowCuts) {
  StreamSession::Options options;
  options.max_queued_frames = 3;
  options.metrics = &metrics_;
  StreamSession::Identity identity;
  identity.stream_id = 1;
  identity.user_id = 77;
  identity.auth_session_id = 7700;
  StuckTransport transport;
  auto session = std::make_shared<StreamSession>(
      options, identity, env_->db().reader(), nullptr, &transport);
  ASSERT_TRUE(env_->service().router().Register(session, false).ok());
  EXPECT_EQ(Sampled("im_message_devices_online"), 1);

  // The first frame goes out at once (and never completes); two wait.
  for (uint64_t id = 1; id <= 3; ++id) session->EnqueueReply(ReplyFrame(id));
  EXPECT_EQ(Sampled("im_message_outbound_queue_depth"), 2);
  EXPECT_EQ(Recorded("im_message_overflow_cuts_total"), 0);
  session->EnqueueReply(ReplyFrame(4));
  EXPECT_EQ(Recorded("im_message_overflow_cuts_total"), 1);
  // The waiting frames are dropped; the stream ends after the write in
  // flight.
  EXPECT_EQ(Sampled("im_message_outbound_queue_depth"), 0);
  EXPECT_FALSE(transport.finished().has_value());
  session->OnWriteDone(true);
  ASSERT_TRUE(transport.finished().has_value());
  EXPECT_EQ(transport.finished()->code(), absl::StatusCode::kResourceExhausted);
  env_->service().router().Unregister(session.get());
}

}  // namespace
}  // namespace im::message
