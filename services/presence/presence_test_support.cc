#include "services/presence/presence_test_support.h"

#include <cstdlib>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace im::presence {
namespace {

void Check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "presence test support: " << what << std::endl;
    std::abort();
  }
}

}  // namespace

absl::Status CountingUserStore::UpdateLastSeen(
    absl::Span<const std::pair<uint64_t, absl::Time>> last_seen) {
  // Counted once written, so a test that sees the count sees the row.
  absl::Status status = inner_->UpdateLastSeen(last_seen);
  if (status.ok()) {
    absl::MutexLock lock(&mu_);
    ++update_calls_;
    for (const auto& [id, time] : last_seen) ++rows_[id];
  }
  return status;
}

int CountingUserStore::update_calls() const {
  absl::MutexLock lock(&mu_);
  return update_calls_;
}

int CountingUserStore::rows_for(uint64_t user_id) const {
  absl::MutexLock lock(&mu_);
  auto it = rows_.find(user_id);
  return it == rows_.end() ? 0 : it->second;
}

PresenceHarness::PresenceHarness(storage::Database* database,
                                 PresenceServiceImpl::Options options)
    : database_(database),
      options_(std::move(options)),
      counting_users_(database->users()) {
  auto codec = TokenCodec::Create({TokenKey{1, std::string(32, 'k')}});
  Check(codec.ok(), "token codec");
  codec_ = *std::move(codec);
  authenticator_ = std::make_unique<Authenticator>(codec_.get(), &revocations_);
}

PresenceHarness::~PresenceHarness() { Stop(); }

void PresenceHarness::Start() {
  auto service =
      PresenceServiceImpl::Create(options_, authenticator_.get(),
                                  &counting_users_, database_->reader(),
                                  &revocations_);
  Check(service.ok(), service.status().ToString());
  service_ = *std::move(service);
  ServerOptions server_options;
  if (!address_.empty()) server_options.listen_address = address_;
  server_options.max_concurrent_streams = 4096;
  auto server = GrpcServer::Start(server_options, {service_.get()});
  Check(server.ok(), server.status().ToString());
  server_ = *std::move(server);
  if (address_.empty()) {
    address_ = server_->address();
    channel_ =
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    stub_ = v1::PresenceService::NewStub(channel_);
  }
}

void PresenceHarness::Stop() {
  if (service_ != nullptr) service_->Shutdown();
  if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  server_.reset();
  service_.reset();
}

std::unique_ptr<PresenceLeaseClient> PresenceHarness::LeaseClient(
    const std::string& node) {
  PresenceLeaseClient::Options options;
  options.node_id = node;
  options.min_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(100);
  options.rpc_timeout = absl::Seconds(2);
  auto client = PresenceLeaseClient::Create(options, channel_,
                                            [this] { return InternalToken(); });
  Check(client.ok(), client.status().ToString());
  return *std::move(client);
}

DeviceStream MobileStream(uint64_t user_id, uint64_t session_id,
                          const std::string& name) {
  DeviceStream stream;
  stream.user_id = user_id;
  stream.session_id = session_id;
  stream.device_kind = auth::v1::DEVICE_KIND_MOBILE;
  stream.device_name = name;
  return stream;
}

std::string PresenceHarness::UserToken(uint64_t user_id,
                                       uint64_t session_id) const {
  Caller caller;
  caller.user_id = user_id;
  caller.session_id = session_id;
  caller.role = auth::v1::ROLE_USER;
  caller.expires_at = absl::Now() + absl::Hours(1);
  return codec_->Mint(caller, absl::Now());
}

std::string PresenceHarness::InternalToken() const {
  Caller caller;
  caller.role = auth::v1::ROLE_INTERNAL;
  caller.expires_at = absl::Now() + absl::Hours(1);
  return codec_->Mint(caller, absl::Now());
}

std::unique_ptr<grpc::ClientContext> PresenceHarness::Context(
    const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) AttachBearerToken(context.get(), token);
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return context;
}

BatchReader::BatchReader(v1::PresenceService::Stub* stub,
                         const std::string& token,
                         const std::vector<uint64_t>& user_ids) {
  AttachBearerToken(&context_, token);
  for (uint64_t id : user_ids) request_.add_user_ids(id);
  reader_ = stub->Subscribe(&context_, request_);
  thread_ = std::thread([this] {
    v1::PresenceBatch batch;
    while (reader_->Read(&batch)) {
      absl::MutexLock lock(&mu_);
      batches_.push_back(batch);
    }
    grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    status_ = std::move(status);
  });
}

BatchReader::~BatchReader() {
  context_.TryCancel();
  thread_.join();
}

std::optional<v1::PresenceBatch> BatchReader::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !batches_.empty() || status_.has_value();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (batches_.empty()) return std::nullopt;
  v1::PresenceBatch batch = std::move(batches_.front());
  batches_.pop_front();
  return batch;
}

std::optional<grpc::Status> BatchReader::Finished(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return status_.has_value();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  return status_;
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return done();
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

}  // namespace im::presence
