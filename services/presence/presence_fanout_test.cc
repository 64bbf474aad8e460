#include "services/presence/presence_fanout.h"

#include <memory>
#include <optional>
#include <vector>

#include "gtest/gtest.h"

namespace im::presence {
namespace {

constexpr absl::Duration kWindow = absl::Milliseconds(20);

// Records what the subscription writes; writes complete only when the test
// says so, like a subscriber that reads slowly.
class RecordingWriter final : public PresenceStreamWriter {
 public:
  void WriteBatch(const v1::PresenceBatch* batch) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(in_flight_) << "two writes outstanding";
    EXPECT_FALSE(finished_.has_value()) << "write after finish";
    in_flight_ = true;
    batches_.push_back(*batch);
  }
  void FinishStream(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(in_flight_) << "finish with a write outstanding";
    EXPECT_FALSE(finished_.has_value()) << "finished twice";
    finished_ = status;
  }

  // Waits for the number of batches to reach `count`.
  bool WaitForBatches(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return batches_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<v1::PresenceBatch> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  // Completes the outstanding write (as gRPC's OnWriteDone would).
  void Complete(PresenceSubscription* subscription, bool ok = true) {
    {
      absl::MutexLock lock(&mu_);
      ASSERT_TRUE(in_flight_);
      in_flight_ = false;
    }
    subscription->OnWriteDone(ok);
  }
  std::optional<grpc::Status> finished() {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

 private:
  absl::Mutex mu_;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::PresenceBatch> batches_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> finished_ ABSL_GUARDED_BY(mu_);
};

class PresenceFanoutTest : public ::testing::Test {
 protected:
  PresenceFanoutTest()
      : table_(PresenceLeaseTable::Options{},
               [this](absl::Span<const uint64_t> users) {
                 fanout_->OnUsersChanged(users);
               }) {
    fanout_ = std::make_unique<PresenceFanout>(
        PresenceFanout::Options{kWindow}, &table_);
  }
  ~PresenceFanoutTest() override {
    fanout_->FinishAll(grpc::Status(grpc::StatusCode::UNAVAILABLE, "end"));
  }

  void Open(uint64_t user, uint64_t session, const std::string& name) {
    LeaseSpec spec;
    spec.node_id = "n1";
    spec.user_id = user;
    spec.session_id = session;
    spec.device_name = name;
    table_.OpenLease(spec, absl::Now());
  }

  PresenceLeaseTable table_;
  std::unique_ptr<PresenceFanout> fanout_;
  RecordingWriter writer_;
};

std::vector<uint64_t> Ids(const v1::PresenceBatch& batch) {
  std::vector<uint64_t> ids;
  for (const auto& presence : batch.presences()) {
    ids.push_back(presence.user_id());
  }
  return ids;
}

TEST_F(PresenceFanoutTest, SlowSubscriberGetsOnlyLatestStatePerUser) {
  auto subscription = std::make_shared<PresenceSubscription>(
      1, 10, std::vector<uint64_t>{2, 3, 4}, &writer_);
  fanout_->Add(subscription, {2, 3}, absl::Now());
  ASSERT_TRUE(writer_.WaitForBatches(1, absl::Seconds(5)));
  EXPECT_TRUE(writer_.batches()[0].snapshot());
  EXPECT_EQ(Ids(writer_.batches()[0]), (std::vector<uint64_t>{2, 3, 4}));

  // The snapshot is not yet read: changes pile up as pending ids only.
  for (int i = 0; i < 50; ++i) {
    Open(2, 20, "phone-" + std::to_string(i));
    Open(3, 30, "web-" + std::to_string(i));
    Open(4, 40, "hidden-" + std::to_string(i));
  }
  absl::SleepFor(kWindow * 5);
  EXPECT_EQ(writer_.batches().size(), 1u);

  writer_.Complete(subscription.get());
  ASSERT_TRUE(writer_.WaitForBatches(2, absl::Seconds(5)));
  const v1::PresenceBatch batch = writer_.batches()[1];
  EXPECT_FALSE(batch.snapshot());
  // User 4 is not visible: it stays UNKNOWN, which is not a change.
  std::vector<uint64_t> ids = Ids(batch);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint64_t>{2, 3}));
  for (const auto& presence : batch.presences()) {
    ASSERT_EQ(presence.devices_size(), 1);
    EXPECT_EQ(presence.devices(0).name(),
              presence.user_id() == 2 ? "phone-49" : "web-49");
  }
  writer_.Complete(subscription.get());
  absl::SleepFor(kWindow * 5);
  EXPECT_EQ(writer_.batches().size(), 2u);
}

TEST_F(PresenceFanoutTest, ChangeRevertedWithinAWindowSendsNothing) {
  auto subscription = std::make_shared<PresenceSubscription>(
      1, 10, std::vector<uint64_t>{2, 3}, &writer_);
  fanout_->Add(subscription, {2, 3}, absl::Now());
  ASSERT_TRUE(writer_.WaitForBatches(1, absl::Seconds(5)));
  table_.SetStatusText(3, "away", absl::Now());
  table_.SetStatusText(3, "", absl::Now());
  Open(2, 20, "phone");
  writer_.Complete(subscription.get());
  ASSERT_TRUE(writer_.WaitForBatches(2, absl::Seconds(5)));
  EXPECT_EQ(Ids(writer_.batches()[1]), (std::vector<uint64_t>{2}));
}

TEST_F(PresenceFanoutTest, FinishWaitsForTheOutstandingWrite) {
  auto subscription = std::make_shared<PresenceSubscription>(
      1, 10, std::vector<uint64_t>{2}, &writer_);
  fanout_->Add(subscription, {2}, absl::Now());
  ASSERT_TRUE(writer_.WaitForBatches(1, absl::Seconds(5)));
  fanout_->FinishSession(10, grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                          "revoked"));
  EXPECT_FALSE(writer_.finished().has_value());
  Open(2, 20, "phone");  // nothing more is written once finishing
  writer_.Complete(subscription.get());
  ASSERT_TRUE(writer_.finished().has_value());
  EXPECT_EQ(writer_.finished()->error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  absl::SleepFor(kWindow * 3);
  EXPECT_EQ(writer_.batches().size(), 1u);
  fanout_->Remove(subscription.get());
  EXPECT_EQ(fanout_->subscriptions(), 0u);
}

TEST_F(PresenceFanoutTest, SubscriptionEndedBeforeRegistrationIsNotKept) {
  auto subscription = std::make_shared<PresenceSubscription>(
      1, 10, std::vector<uint64_t>{2}, &writer_);
  subscription->RequestFinish(
      grpc::Status(grpc::StatusCode::CANCELLED, "gone"));
  ASSERT_TRUE(writer_.finished().has_value());
  fanout_->Add(subscription, {2}, absl::Now());
  EXPECT_EQ(fanout_->subscriptions(), 0u);
  EXPECT_TRUE(writer_.batches().empty());
}

TEST_F(PresenceFanoutTest, VisibilityChangeIsSentAsAChange) {
  Open(2, 20, "phone");
  auto subscription = std::make_shared<PresenceSubscription>(
      1, 10, std::vector<uint64_t>{2}, &writer_);
  fanout_->Add(subscription, {}, absl::Now());
  ASSERT_TRUE(writer_.WaitForBatches(1, absl::Seconds(5)));
  EXPECT_EQ(writer_.batches()[0].presences(0).state(),
            v1::PRESENCE_STATE_UNKNOWN);
  writer_.Complete(subscription.get());
  fanout_->UpdateVisible(subscription, {2}, absl::Now());
  ASSERT_TRUE(writer_.WaitForBatches(2, absl::Seconds(5)));
  EXPECT_EQ(writer_.batches()[1].presences(0).state(),
            v1::PRESENCE_STATE_ONLINE);
  writer_.Complete(subscription.get());
  fanout_->UpdateVisible(subscription, {}, absl::Now());
  ASSERT_TRUE(writer_.WaitForBatches(3, absl::Seconds(5)));
  EXPECT_EQ(writer_.batches()[2].presences(0).state(),
            v1::PRESENCE_STATE_UNKNOWN);
  EXPECT_EQ(writer_.batches()[2].presences(0).devices_size(), 0);
  writer_.Complete(subscription.get());
}

}  // namespace
}  // namespace im::presence
