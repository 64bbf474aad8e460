#ifndef IM_SERVICES_PRESENCE_PRESENCE_TEST_SUPPORT_H_
#define IM_SERVICES_PRESENCE_PRESENCE_TEST_SUPPORT_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/presence/device_presence_reporter.h"
#include "services/presence/presence_lease_client.h"
#include "services/presence/presence_service.h"
#include "storage/database.h"

// Shared by presence's tests and benchmark: a counting UserStore, a
// presence server on a free port over any storage::Database, and a
// Subscribe reader.

namespace im::presence {

// Forwards to another UserStore and counts successful last_seen writes per
// user.
class CountingUserStore final : public storage::UserStore {
 public:
  explicit CountingUserStore(storage::UserStore* inner) : inner_(inner) {}

  // UpdateLastSeen calls, and rows written for one user.
  int update_calls() const;
  int rows_for(uint64_t user_id) const;

  absl::StatusOr<storage::UserRecord> CreateUser(
      const storage::NewUser& user) override {
    return inner_->CreateUser(user);
  }
  absl::StatusOr<storage::UserRecord> GetUserByUsername(
      const std::string& username_norm) override {
    return inner_->GetUserByUsername(username_norm);
  }
  absl::StatusOr<storage::UserRecord> GetUser(uint64_t user_id) override {
    return inner_->GetUser(user_id);
  }
  absl::StatusOr<std::vector<storage::UserRecord>> GetUsers(
      absl::Span<const uint64_t> user_ids) override {
    return inner_->GetUsers(user_ids);
  }
  absl::StatusOr<std::vector<storage::UserRecord>> GetUsersByUsername(
      absl::Span<const std::string> usernames_norm) override {
    return inner_->GetUsersByUsername(usernames_norm);
  }
  absl::Status SetAdmin(uint64_t user_id, bool is_admin) override {
    return inner_->SetAdmin(user_id, is_admin);
  }
  absl::Status SetStatusText(uint64_t user_id,
                             const std::string& text) override {
    return inner_->SetStatusText(user_id, text);
  }
  absl::Status UpdateLastSeen(
      absl::Span<const std::pair<uint64_t, absl::Time>> last_seen) override;
  absl::StatusOr<storage::ServiceAccountRecord> CreateServiceAccount(
      const storage::NewServiceAccount& account) override {
    return inner_->CreateServiceAccount(account);
  }
  absl::StatusOr<std::vector<storage::ServiceAccountRecord>>
  ListServiceAccounts() override {
    return inner_->ListServiceAccounts();
  }
  absl::StatusOr<storage::ServiceAccountRecord> FindServiceAccountByKeyHash(
      const std::string& api_key_hash) override {
    return inner_->FindServiceAccountByKeyHash(api_key_hash);
  }
  absl::StatusOr<storage::ServiceAccountRecord> RevokeServiceAccount(
      uint64_t user_id, absl::Time now) override {
    return inner_->RevokeServiceAccount(user_id, now);
  }

 private:
  storage::UserStore* const inner_;
  mutable absl::Mutex mu_;
  int update_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, int> rows_ ABSL_GUARDED_BY(mu_);
};

// A presence service and gRPC server over `database` (users through a
// CountingUserStore), with the token codec to mint callers. Restart()
// replaces the service and server on the same port, as a crashed and
// restarted presence would come back (memory lost, database kept).
class PresenceHarness {
 public:
  PresenceHarness(storage::Database* database,
                  PresenceServiceImpl::Options options);
  ~PresenceHarness();

  // Starts the service and server; on restart the same port is reused.
  void Start();
  // Service Shutdown (flushes last_seen), then the server.
  void Stop();
  void Restart() {
    Stop();
    Start();
  }

  const std::string& address() const { return address_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  v1::PresenceService::Stub* stub() const { return stub_.get(); }
  PresenceServiceImpl* service() const { return service_.get(); }
  CountingUserStore* users() { return &counting_users_; }
  RevocationSet* revocations() { return &revocations_; }

  // A lease client for `node` with short retry backoffs.
  std::unique_ptr<PresenceLeaseClient> LeaseClient(const std::string& node);

  std::string UserToken(uint64_t user_id, uint64_t session_id) const;
  std::string InternalToken() const;
  // A context carrying `token` (may be empty: no header).
  static std::unique_ptr<grpc::ClientContext> Context(
      const std::string& token);

 private:
  storage::Database* const database_;
  const PresenceServiceImpl::Options options_;
  CountingUserStore counting_users_;
  std::unique_ptr<TokenCodec> codec_;
  RevocationSet revocations_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<PresenceServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::PresenceService::Stub> stub_;
};

// Reads one Subscribe stream on its own thread and queues the batches.
class BatchReader {
 public:
  BatchReader(v1::PresenceService::Stub* stub, const std::string& token,
              const std::vector<uint64_t>& user_ids);
  // Cancels the call and joins.
  ~BatchReader();

  // The next batch, or nullopt when none came within `timeout` or the
  // stream ended.
  std::optional<v1::PresenceBatch> Next(absl::Duration timeout);
  // The stream's status once it ended (waits up to `timeout`).
  std::optional<grpc::Status> Finished(absl::Duration timeout);

 private:
  grpc::ClientContext context_;
  v1::SubscribeRequest request_;
  std::unique_ptr<grpc::ClientReader<v1::PresenceBatch>> reader_;
  absl::Mutex mu_;
  std::deque<v1::PresenceBatch> batches_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// A mobile device stream.
DeviceStream MobileStream(uint64_t user_id, uint64_t session_id,
                          const std::string& name = "phone");

// Polls `done` until it holds or `timeout` passes; returns its last value.
bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout);

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_PRESENCE_TEST_SUPPORT_H_
