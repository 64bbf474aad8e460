#include "services/common/revocation_watcher.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "services/common/grpc_server.h"
#include "services/common/proto_time.h"

namespace im {
namespace {

// A stand-in for auth's WatchRevocations: each stream sends the scripted
// snapshot, then ends with `end_status` (or holds until the test ends it).
class ScriptedWatchService final : public auth::v1::AuthService::Service {
 public:
  grpc::Status WatchRevocations(
      grpc::ServerContext* context, const auth::v1::WatchRevocationsRequest*,
      grpc::ServerWriter<auth::v1::RevocationBatch>* writer) override {
    {
      absl::MutexLock lock(&mu_);
      ++streams_;
      const auto& metadata = context->client_metadata();
      auto it = metadata.find("authorization");
      if (it != metadata.end()) {
        last_authorization_.assign(it->second.data(), it->second.size());
      }
    }
    auth::v1::RevocationBatch snapshot;
    {
      absl::MutexLock lock(&mu_);
      snapshot = snapshot_;
    }
    snapshot.set_snapshot(true);
    if (!writer->Write(snapshot)) return grpc::Status::CANCELLED;
    absl::MutexLock lock(&mu_);
    auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return end_streams_ || context->IsCancelled();
    };
    // Cancellation does not touch mu_, so look again now and then.
    while (!ended()) {
      mu_.AwaitWithTimeout(absl::Condition(&ended), absl::Milliseconds(20));
    }
    end_streams_ = false;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "scripted end");
  }

  void AddToSnapshot(uint64_t session_id, uint64_t user_id, absl::Time at) {
    absl::MutexLock lock(&mu_);
    auth::v1::RevokedSession* session = snapshot_.add_sessions();
    session->set_session_id(session_id);
    session->set_user_id(user_id);
    SetProtoTime(at, session->mutable_revoked_at());
  }
  void EndStreams() {
    absl::MutexLock lock(&mu_);
    end_streams_ = true;
  }
  int streams() {
    absl::MutexLock lock(&mu_);
    return streams_;
  }
  std::string last_authorization() {
    absl::MutexLock lock(&mu_);
    return last_authorization_;
  }

 private:
  absl::Mutex mu_;
  auth::v1::RevocationBatch snapshot_ ABSL_GUARDED_BY(mu_);
  bool end_streams_ ABSL_GUARDED_BY(mu_) = false;
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_authorization_ ABSL_GUARDED_BY(mu_);
};

class RevocationWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    codec_ = *TokenCodec::Create({TokenKey{1, std::string(32, 'w')}});
    tokens_ = std::make_unique<InternalTokenSource>(codec_.get());
    auto server = GrpcServer::Start(ServerOptions{}, {&service_});
    ASSERT_TRUE(server.ok());
    server_ = *std::move(server);
  }
  void TearDown() override {
    service_.EndStreams();
    if (watcher_) watcher_->Stop();
    server_->Shutdown(absl::ZeroDuration());
  }

  void StartWatcher() {
    RevocationWatcher::Options options;
    options.initial_backoff = absl::Milliseconds(10);
    options.max_backoff = absl::Milliseconds(50);
    auto watcher = RevocationWatcher::Create(
        options,
        grpc::CreateChannel(server_->address(),
                            grpc::InsecureChannelCredentials()),
        &set_, tokens_.get());
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    watcher_ = *std::move(watcher);
  }

  std::unique_ptr<TokenCodec> codec_;
  std::unique_ptr<InternalTokenSource> tokens_;
  ScriptedWatchService service_;
  std::unique_ptr<GrpcServer> server_;
  RevocationSet set_;
  std::unique_ptr<RevocationWatcher> watcher_;
};

TEST_F(RevocationWatcherTest, AppliesSnapshotSkippingExpiredEntries) {
  service_.AddToSnapshot(1, 10, absl::Now() - absl::Minutes(1));
  service_.AddToSnapshot(2, 20, absl::Now() - absl::Hours(1));  // too old
  StartWatcher();
  ASSERT_TRUE(watcher_->WaitUntilConnected(absl::Seconds(10)));
  EXPECT_TRUE(set_.IsRevoked(1));
  EXPECT_FALSE(set_.IsRevoked(2));
  EXPECT_EQ(set_.size(), 1u);
  // The stream speaks with an internal token.
  const std::string header = service_.last_authorization();
  ASSERT_EQ(header.rfind("Bearer ", 0), 0u);
  auto caller = codec_->Verify(header.substr(7), absl::Now());
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->role, auth::v1::ROLE_INTERNAL);
}

TEST_F(RevocationWatcherTest, ReconnectsAfterTheStreamEnds) {
  StartWatcher();
  ASSERT_TRUE(watcher_->WaitUntilConnected(absl::Seconds(10)));
  service_.AddToSnapshot(5, 50, absl::Now());
  service_.EndStreams();
  for (int i = 0; i < 1000 && watcher_->snapshots_applied() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(watcher_->snapshots_applied(), 2u);
  EXPECT_GE(service_.streams(), 2);
  EXPECT_TRUE(set_.IsRevoked(5));
}

TEST_F(RevocationWatcherTest, StopEndsAnOpenStreamPromptly) {
  StartWatcher();
  ASSERT_TRUE(watcher_->WaitUntilConnected(absl::Seconds(10)));
  watcher_->Stop();
  EXPECT_FALSE(watcher_->connected());
  watcher_->Stop();  // idempotent
}

TEST(RevocationWatcherCreateTest, RefusesBadArguments) {
  RevocationSet set;
  auto codec = *TokenCodec::Create({TokenKey{1, std::string(32, 'w')}});
  InternalTokenSource tokens(codec.get());
  auto channel =
      grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  EXPECT_EQ(RevocationWatcher::Create({}, nullptr, &set, &tokens)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  RevocationWatcher::Options backwards;
  backwards.initial_backoff = absl::Seconds(5);
  backwards.max_backoff = absl::Seconds(1);
  EXPECT_EQ(RevocationWatcher::Create(backwards, channel, &set, &tokens)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RevocationWatcherCreateTest, NotConnectedWhileAuthIsUnreachable) {
  RevocationSet set;
  auto codec = *TokenCodec::Create({TokenKey{1, std::string(32, 'w')}});
  InternalTokenSource tokens(codec.get());
  auto watcher = RevocationWatcher::Create(
      {},
      grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()),
      &set, &tokens);
  ASSERT_TRUE(watcher.ok());
  EXPECT_FALSE((*watcher)->WaitUntilConnected(absl::Milliseconds(300)));
  EXPECT_EQ((*watcher)->snapshots_applied(), 0u);
}

}  // namespace
}  // namespace im
