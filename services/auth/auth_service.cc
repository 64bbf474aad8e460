#include "services/auth/auth_service.h"

#include <arpa/inet.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/proto_time.h"
#include "services/common/retry_after.h"
#include "services/common/status.h"
#include "spdlog/spdlog.h"

namespace im::auth {
namespace {

// Revoked sessions per RevocationBatch after the snapshot.
constexpr size_t kMaxSessionsPerBatch = 1000;

void AddSessions(const std::vector<storage::RevokedSessionRecord>& records,
                 size_t begin, size_t end, v1::RevocationBatch* batch) {
  for (size_t i = begin; i < end; ++i) {
    v1::RevokedSession* session = batch->add_sessions();
    session->set_session_id(records[i].session_id);
    session->set_user_id(records[i].user_id);
    SetProtoTime(records[i].revoked_at, session->mutable_revoked_at());
  }
}

// Overload of a pool: a hint to come back shortly.
absl::Status Overloaded(const absl::Status& status) {
  if (!absl::IsResourceExhausted(status)) return status;
  return RetryAfterError("auth is overloaded", absl::Seconds(1));
}

// A write reactor that fails the call at once (refused WatchRevocations).
class RefusedStream final
    : public grpc::ServerWriteReactor<v1::RevocationBatch> {
 public:
  explicit RefusedStream(const absl::Status& status) {
    Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

// One WatchRevocations call: the snapshot (read from the store on the store
// pool) first, then every revocation the feed pushes, one write in flight.
// Revocations pushed while the snapshot is being read wait behind it, so
// nothing revoked after the subscription is missed (some may come twice,
// which watchers ignore).
class RevocationStream final
    : public grpc::ServerWriteReactor<v1::RevocationBatch>,
      public RevocationFeed::Subscriber {
 public:
  RevocationStream(RevocationFeed* feed, size_t max_backlog)
      : feed_(feed), max_backlog_(max_backlog) {}

  // Subscribes, then queues the snapshot read on `pool`.
  void Start(WorkerPool& pool) {
    if (!feed_->Subscribe(this)) {
      absl::MutexLock lock(&mu_);
      FinishLocked(absl::UnavailableError("auth is shutting down"));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      snapshot_task_pending_ = true;
    }
    absl::Status queued = pool.Submit([this] { LoadSnapshot(); });
    if (!queued.ok()) {
      absl::MutexLock lock(&mu_);
      snapshot_task_pending_ = false;
      FinishLocked(Overloaded(queued));
    }
  }

  void OnRevoked(
      const std::vector<storage::RevokedSessionRecord>& revoked) override {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (backlog_.size() + revoked.size() > max_backlog_) {
      FinishLocked(absl::ResourceExhaustedError(
          "revocation watcher fell too far behind; reconnect"));
      return;
    }
    backlog_.insert(backlog_.end(), revoked.begin(), revoked.end());
    WriteNextLocked();
  }

  void OnFeedClosed() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(absl::UnavailableError("auth is shutting down"));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok) {
      FinishLocked(absl::UnavailableError("revocation stream broke"));
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(absl::CancelledError("watcher went away"));
  }

  void OnDone() override {
    feed_->Unsubscribe(this);
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      last = !snapshot_task_pending_;
    }
    if (last) delete this;
  }

 private:
  void LoadSnapshot() {
    absl::StatusOr<std::vector<storage::RevokedSessionRecord>> snapshot =
        feed_->Snapshot();
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      snapshot_task_pending_ = false;
      last = done_;
      if (!last) {
        if (!snapshot.ok()) {
          FinishLocked(snapshot.status());
        } else {
          snapshot_ = *std::move(snapshot);
          snapshot_loaded_ = true;
          WriteNextLocked();
        }
      }
    }
    if (last) delete this;
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || write_in_flight_ || !snapshot_loaded_) return;
    outgoing_.Clear();
    if (!snapshot_sent_) {
      outgoing_.set_snapshot(true);
      AddSessions(snapshot_, 0, snapshot_.size(), &outgoing_);
      snapshot_.clear();
      snapshot_sent_ = true;
    } else if (!backlog_.empty()) {
      const size_t n = std::min(backlog_.size(), kMaxSessionsPerBatch);
      AddSessions(backlog_, 0, n, &outgoing_);
      backlog_.erase(backlog_.begin(), backlog_.begin() + n);
    } else {
      return;
    }
    write_in_flight_ = true;
    StartWrite(&outgoing_);
  }

  void FinishLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(ToGrpcStatus(status));
  }

  RevocationFeed* const feed_;
  const size_t max_backlog_;
  absl::Mutex mu_;
  std::vector<storage::RevokedSessionRecord> snapshot_ ABSL_GUARDED_BY(mu_);
  std::vector<storage::RevokedSessionRecord> backlog_ ABSL_GUARDED_BY(mu_);
  v1::RevocationBatch outgoing_ ABSL_GUARDED_BY(mu_);
  bool snapshot_loaded_ ABSL_GUARDED_BY(mu_) = false;
  bool snapshot_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // The reactor is deleted once gRPC is done with it and no pool task
  // still points at it.
  bool snapshot_task_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

AuthServiceImpl::AuthServiceImpl(const Options& options,
                                 const TokenCodec* codec, Clock clock)
    : options_(options),
      trusted_proxies_(options.trusted_proxies.begin(),
                       options.trusted_proxies.end()),
      authenticator_(codec, &revocations_, std::move(clock)) {}

absl::StatusOr<std::unique_ptr<AuthServiceImpl>> AuthServiceImpl::Create(
    const Options& options, storage::UserStore* users,
    storage::SessionStore* sessions, const TokenCodec* codec, Clock clock) {
  if (options.credential_threads < 1 || options.store_threads < 1) {
    return absl::InvalidArgumentError("pools need at least one thread");
  }
  std::unique_ptr<AuthServiceImpl> service(
      new AuthServiceImpl(options, codec, clock));
  absl::StatusOr<std::unique_ptr<PasswordHasher>> hasher =
      PasswordHasher::Create(options.password_hashing);
  if (!hasher.ok()) return hasher.status();
  service->hasher_ = *std::move(hasher);
  absl::StatusOr<std::unique_ptr<RevocationFeed>> feed = RevocationFeed::Create(
      options.revocations, sessions, &service->revocations_, clock);
  if (!feed.ok()) return feed.status();
  service->feed_ = *std::move(feed);
  service->accounts_ = std::make_unique<Accounts>(
      options.accounts, users, sessions, codec, service->hasher_.get(),
      service->feed_.get(), clock);
  service->credential_pool_ = std::make_unique<WorkerPool>(WorkerPool::Options{
      "credential", options.credential_threads, options.credential_queue});
  service->store_pool_ = std::make_unique<WorkerPool>(WorkerPool::Options{
      "auth-store", options.store_threads, options.store_queue});
  return service;
}

AuthServiceImpl::~AuthServiceImpl() {
  // Join the pools before the feed and accounts their tasks use go away.
  credential_pool_.reset();
  store_pool_.reset();
}

void AuthServiceImpl::Drain() { feed_->Close(); }

std::string AuthServiceImpl::PeerKey(
    const grpc::CallbackServerContext& context) const {
  std::string key = PeerThrottleKey(context.peer());
  if (!trusted_proxies_.contains(key)) return key;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("x-forwarded-for");
  if (it == metadata.end()) return key;
  // The proxy appends the address it saw; earlier entries are the client's
  // word and not trusted.
  absl::string_view forwarded(it->second.data(), it->second.size());
  const size_t comma = forwarded.rfind(',');
  if (comma != absl::string_view::npos) forwarded.remove_prefix(comma + 1);
  const std::string address(absl::StripAsciiWhitespace(forwarded));
  unsigned char buffer[sizeof(in6_addr)];
  if (inet_pton(AF_INET, address.c_str(), buffer) == 1) return address;
  if (inet_pton(AF_INET6, address.c_str(), buffer) == 1) {
    return PeerThrottleKey(absl::StrCat("ipv6:[", address, "]:0"));
  }
  return key;
}

template <typename Response, typename Work>
grpc::ServerUnaryReactor* AuthServiceImpl::RunOnPool(
    grpc::CallbackServerContext* context, WorkerPool& pool, Response* response,
    Work work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status queued = pool.Submit(
      [context, reactor, response, work = std::move(work)]() mutable {
        // A call that gave up while queued (deadline, client gone) is not
        // worth an argon2 hash or a query.
        if (context->IsCancelled()) {
          reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                                       "call cancelled while queued"));
          return;
        }
        absl::StatusOr<Response> result = work();
        if (result.ok()) {
          *response = *std::move(result);
          reactor->Finish(grpc::Status::OK);
          return;
        }
        AddRetryAfterTrailer(result.status(), context);
        reactor->Finish(ToGrpcStatus(result.status()));
      });
  if (!queued.ok()) {
    const absl::Status status = Overloaded(queued);
    AddRetryAfterTrailer(status, context);
    reactor->Finish(ToGrpcStatus(status));
  }
  return reactor;
}

template <typename Response, typename Work>
grpc::ServerUnaryReactor* AuthServiceImpl::RunAuthenticated(
    grpc::CallbackServerContext* context, Response* response, Work work) {
  absl::StatusOr<Caller> caller = authenticator_.Authenticate(*context);
  if (!caller.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  return RunOnPool(context, *store_pool_, response,
                   [caller = *caller, work = std::move(work)]() mutable {
                     return work(caller);
                   });
}

grpc::ServerUnaryReactor* AuthServiceImpl::Register(
    grpc::CallbackServerContext* context, const v1::RegisterRequest* request,
    v1::RegisterResponse* response) {
  return RunOnPool(context, *credential_pool_, response,
                   [this, request, peer = PeerKey(*context)] {
                     return accounts_->Register(*request, peer);
                   });
}

grpc::ServerUnaryReactor* AuthServiceImpl::Login(
    grpc::CallbackServerContext* context, const v1::LoginRequest* request,
    v1::LoginResponse* response) {
  return RunOnPool(context, *credential_pool_, response,
                   [this, request, peer = PeerKey(*context)] {
                     return accounts_->Login(*request, peer);
                   });
}

grpc::ServerUnaryReactor* AuthServiceImpl::Refresh(
    grpc::CallbackServerContext* context, const v1::RefreshRequest* request,
    v1::RefreshResponse* response) {
  return RunOnPool(context, *store_pool_, response,
                   [this, request] { return accounts_->Refresh(*request); });
}

grpc::ServerUnaryReactor* AuthServiceImpl::ExchangeApiKey(
    grpc::CallbackServerContext* context,
    const v1::ExchangeApiKeyRequest* request,
    v1::ExchangeApiKeyResponse* response) {
  return RunOnPool(context, *store_pool_, response,
                   [this, request, peer = PeerKey(*context)] {
                     return accounts_->ExchangeApiKey(*request, peer);
                   });
}

grpc::ServerUnaryReactor* AuthServiceImpl::Logout(
    grpc::CallbackServerContext* context, const v1::LogoutRequest*,
    v1::LogoutResponse* response) {
  return RunAuthenticated(context, response, [this](const Caller& caller) {
    return accounts_->Logout(caller);
  });
}

grpc::ServerUnaryReactor* AuthServiceImpl::LogoutAll(
    grpc::CallbackServerContext* context, const v1::LogoutAllRequest*,
    v1::LogoutAllResponse* response) {
  return RunAuthenticated(context, response, [this](const Caller& caller) {
    return accounts_->LogoutAll(caller);
  });
}

grpc::ServerUnaryReactor* AuthServiceImpl::ListSessions(
    grpc::CallbackServerContext* context, const v1::ListSessionsRequest*,
    v1::ListSessionsResponse* response) {
  return RunAuthenticated(context, response, [this](const Caller& caller) {
    return accounts_->ListSessions(caller);
  });
}

grpc::ServerUnaryReactor* AuthServiceImpl::WhoAmI(
    grpc::CallbackServerContext* context, const v1::WhoAmIRequest*,
    v1::WhoAmIResponse* response) {
  return RunAuthenticated(context, response, [this](const Caller& caller) {
    return accounts_->WhoAmI(caller);
  });
}

grpc::ServerUnaryReactor* AuthServiceImpl::LookupUsers(
    grpc::CallbackServerContext* context, const v1::LookupUsersRequest* request,
    v1::LookupUsersResponse* response) {
  return RunAuthenticated(context, response,
                          [this, request](const Caller& caller) {
                            return accounts_->LookupUsers(caller, *request);
                          });
}

grpc::ServerUnaryReactor* AuthServiceImpl::Validate(
    grpc::CallbackServerContext* context, const v1::ValidateRequest* request,
    v1::ValidateResponse* response) {
  return RunAuthenticated(context, response,
                          [this, request](const Caller& caller) {
                            return accounts_->Validate(caller, *request);
                          });
}

grpc::ServerUnaryReactor* AuthServiceImpl::CreateServiceAccount(
    grpc::CallbackServerContext* context,
    const v1::CreateServiceAccountRequest* request,
    v1::CreateServiceAccountResponse* response) {
  return RunAuthenticated(
      context, response, [this, request](const Caller& caller) {
        return accounts_->CreateServiceAccount(caller, *request);
      });
}

grpc::ServerUnaryReactor* AuthServiceImpl::ListServiceAccounts(
    grpc::CallbackServerContext* context, const v1::ListServiceAccountsRequest*,
    v1::ListServiceAccountsResponse* response) {
  return RunAuthenticated(context, response, [this](const Caller& caller) {
    return accounts_->ListServiceAccounts(caller);
  });
}

grpc::ServerUnaryReactor* AuthServiceImpl::RevokeServiceAccount(
    grpc::CallbackServerContext* context,
    const v1::RevokeServiceAccountRequest* request,
    v1::RevokeServiceAccountResponse* response) {
  return RunAuthenticated(
      context, response, [this, request](const Caller& caller) {
        return accounts_->RevokeServiceAccount(caller, *request);
      });
}

grpc::ServerWriteReactor<v1::RevocationBatch>*
AuthServiceImpl::WatchRevocations(grpc::CallbackServerContext* context,
                                  const v1::WatchRevocationsRequest*) {
  absl::StatusOr<Caller> caller = authenticator_.Authenticate(*context);
  absl::Status allowed = caller.status();
  if (allowed.ok()) allowed = RequireRole(*caller, {v1::ROLE_INTERNAL});
  if (!allowed.ok()) return new RefusedStream(allowed);
  auto* stream = new RevocationStream(feed_.get(), options_.max_watch_backlog);
  stream->Start(*store_pool_);
  return stream;
}

}  // namespace im::auth
