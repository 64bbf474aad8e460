#include "services/presence/presence_service.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/status.h"
#include "services/common/text.h"
#include "services/presence/presence_proto.h"
#include "spdlog/spdlog.h"

namespace im::presence {
namespace {

constexpr int kMaxQueryIds = 500;
constexpr int kMaxSubscribeIds = 1000;
constexpr size_t kMaxStatusChars = 140;
constexpr size_t kMaxNodeIdChars = 128;
constexpr size_t kMaxDeviceNameChars = 128;
// Stored fields of users that appeared through leases, loaded per task.
constexpr size_t kLoadBatch = 500;

// A Subscribe call refused before it started: Finish at once, delete when
// gRPC is done with it.
class RefusedWriteReactor final
    : public grpc::ServerWriteReactor<v1::PresenceBatch> {
 public:
  explicit RefusedWriteReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

absl::Status CheckIdCount(int count, int max, absl::string_view rpc) {
  if (count < 1 || count > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        rpc, ": user_ids must hold 1 to ", max, " ids, got ", count));
  }
  return absl::OkStatus();
}

}  // namespace

// One Subscribe stream. Owned by gRPC until OnDone; the subscription it
// shares with the fanout outlives it when needed.
class PresenceServiceImpl::SubscribeReactor final
    : public grpc::ServerWriteReactor<v1::PresenceBatch>,
      public PresenceStreamWriter {
 public:
  SubscribeReactor(PresenceFanout* fanout, const Caller& caller,
                   std::vector<uint64_t> watched)
      : fanout_(fanout),
        subscription_(std::make_shared<PresenceSubscription>(
            caller.user_id, caller.session_id, std::move(watched), this)) {}

  const std::shared_ptr<PresenceSubscription>& subscription() const {
    return subscription_;
  }

  void WriteBatch(const v1::PresenceBatch* batch) override {
    StartWrite(batch);
  }
  void FinishStream(const grpc::Status& status) override { Finish(status); }

  void OnWriteDone(bool ok) override { subscription_->OnWriteDone(ok); }
  void OnCancel() override {
    subscription_->RequestFinish(
        grpc::Status(grpc::StatusCode::CANCELLED, "subscription cancelled"));
  }
  void OnDone() override {
    fanout_->Remove(subscription_.get());
    delete this;
  }

 private:
  PresenceFanout* const fanout_;
  const std::shared_ptr<PresenceSubscription> subscription_;
};

absl::StatusOr<std::unique_ptr<PresenceServiceImpl>>
PresenceServiceImpl::Create(const Options& options,
                            const Authenticator* authenticator,
                            storage::UserStore* users,
                            storage::ConversationReader* conversations,
                            RevocationSet* revocations) {
  if (authenticator == nullptr || users == nullptr ||
      conversations == nullptr) {
    return absl::InvalidArgumentError(
        "presence needs an authenticator, a user store and a conversation "
        "reader");
  }
  if (options.lease_ttl <= absl::ZeroDuration() ||
      options.grace_period < absl::ZeroDuration() ||
      options.coalesce_window <= absl::ZeroDuration() ||
      options.last_seen_interval <= absl::ZeroDuration() ||
      options.last_seen_flush_period <= absl::ZeroDuration() ||
      options.tick <= absl::ZeroDuration() ||
      options.visibility_refresh <= absl::ZeroDuration() ||
      options.visibility_cache_ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "presence durations must be positive (grace and visibility cache "
        "ttl may be zero)");
  }
  if (options.lease_ttl / absl::Milliseconds(1) > UINT32_MAX) {
    return absl::InvalidArgumentError("lease_ttl too long");
  }
  if (options.worker_threads < 1 || options.last_seen_batch < 1 ||
      options.max_subscriptions_per_user < 1) {
    return absl::InvalidArgumentError(
        "worker_threads, last_seen_batch and max_subscriptions_per_user must "
        "be at least 1");
  }
  auto service = std::unique_ptr<PresenceServiceImpl>(new PresenceServiceImpl(
      options, authenticator, users, conversations, revocations));
  if (options.make_replication) {
    absl::StatusOr<std::unique_ptr<LeaseReplication>> replication =
        options.make_replication(&service->table_);
    if (!replication.ok()) return replication.status();
    service->replication_ = *std::move(replication);
  }
  return service;
}

PresenceServiceImpl::PresenceServiceImpl(
    const Options& options, const Authenticator* authenticator,
    storage::UserStore* users, storage::ConversationReader* conversations,
    RevocationSet* revocations)
    : options_(options),
      authenticator_(authenticator),
      users_(users),
      revocations_(revocations),
      table_(
          PresenceLeaseTable::Options{options.lease_ttl, options.grace_period,
                                      options.last_seen_interval,
                                      options.idle_retention},
          [this](absl::Span<const uint64_t> changed) {
            fanout_.OnUsersChanged(changed);
          }),
      visibility_(VisibilityCache::Options{options.visibility_cache_ttl},
                  conversations, options.clock),
      fanout_(PresenceFanout::Options{options.coalesce_window}, &table_) {
  pool_ = std::make_unique<WorkerPool>(WorkerPool::Options{
      "presence", options_.worker_threads, options_.worker_queue});
  if (revocations_ != nullptr) {
    revocation_listener_ = revocations_->AddListener(
        [this](uint64_t session_id, uint64_t) {
          fanout_.FinishSession(
              session_id, grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                       "session revoked"));
        });
  }
  ticker_ = std::thread([this] { RunTicker(); });
  last_seen_writer_ = std::thread([this] { RunLastSeenWriter(); });
}

PresenceServiceImpl::~PresenceServiceImpl() { Shutdown(); }

void PresenceServiceImpl::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    stopping_ = true;
  }
  if (revocations_ != nullptr) {
    revocations_->RemoveListener(revocation_listener_);
  }
  if (replication_ != nullptr) replication_->Stop();
  ticker_.join();
  last_seen_writer_.join();
  fanout_.FinishAll(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "presence is shutting down"));
  if (!WriteLastSeen(/*flush_all=*/true)) {
    spdlog::error("presence: last_seen could not all be written at shutdown");
  }
}

PresenceServiceImpl::Stats PresenceServiceImpl::stats() const {
  const PresenceLeaseTable::Counts counts = table_.counts();
  Stats stats;
  stats.nodes = counts.nodes;
  stats.leases = counts.leases;
  stats.leases_expired = counts.leases_expired;
  stats.users_online = counts.users_online;
  stats.users_in_memory = counts.entries;
  stats.subscriptions = fanout_.subscriptions();
  stats.updates_sent = fanout_.updates_sent();
  stats.batches_sent = fanout_.batches_sent();
  stats.last_seen_rows_written = last_seen_rows_written_.load();
  stats.last_seen_write_failures = last_seen_write_failures_.load();
  return stats;
}

absl::StatusOr<absl::flat_hash_set<uint64_t>> PresenceServiceImpl::VisibleTo(
    const Caller& caller, absl::Span<const uint64_t> candidates) {
  if (caller.is_internal()) {
    absl::flat_hash_set<uint64_t> all(candidates.begin(), candidates.end());
    all.erase(0);
    return all;
  }
  return visibility_.Visible(caller.user_id, candidates);
}

absl::Status PresenceServiceImpl::LoadStoredState(
    absl::Span<const uint64_t> users) {
  const std::vector<uint64_t> missing = table_.UsersWithoutStoredState(users);
  if (missing.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<storage::UserRecord>> records =
      users_->GetUsers(missing);
  if (!records.ok()) return records.status();
  std::vector<StoredUser> found;
  found.reserve(records->size());
  for (const storage::UserRecord& record : *records) {
    found.push_back(
        StoredUser{record.id, record.last_seen_at, record.status_text});
  }
  table_.MergeStoredState(missing, found, options_.clock());
  return absl::OkStatus();
}

absl::Status PresenceServiceImpl::DoQuery(const Caller& caller,
                                          const v1::QueryRequest& request,
                                          v1::QueryResponse* response) {
  const absl::Span<const uint64_t> ids(request.user_ids().data(),
                                       request.user_ids().size());
  absl::StatusOr<absl::flat_hash_set<uint64_t>> visible =
      VisibleTo(caller, ids);
  if (!visible.ok()) return visible.status();
  const std::vector<uint64_t> visible_ids(visible->begin(), visible->end());
  if (absl::Status loaded = LoadStoredState(visible_ids); !loaded.ok()) {
    return loaded;
  }
  const std::vector<UserPresence> views = table_.Get(visible_ids);
  absl::flat_hash_map<uint64_t, const UserPresence*> by_id;
  for (const UserPresence& view : views) by_id[view.user_id] = &view;
  for (uint64_t id : ids) {
    v1::Presence* presence = response->add_presences();
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      FillUnknown(id, presence);
    } else {
      FillPresence(*it->second, presence);
    }
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* PresenceServiceImpl::Query(
    grpc::CallbackServerContext* context, const v1::QueryRequest* request,
    v1::QueryResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = authenticator_->Authenticate(*context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (absl::Status valid =
          CheckIdCount(request->user_ids_size(), kMaxQueryIds, "Query");
      !valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  absl::Status submitted =
      pool_->Submit([this, caller = *caller, request, response, reactor] {
        reactor->Finish(ToGrpcStatus(DoQuery(caller, *request, response)));
      });
  if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
  return reactor;
}

grpc::ServerWriteReactor<v1::PresenceBatch>* PresenceServiceImpl::Subscribe(
    grpc::CallbackServerContext* context,
    const v1::SubscribeRequest* request) {
  absl::StatusOr<Caller> caller = authenticator_->Authenticate(*context);
  if (!caller.ok()) {
    return new RefusedWriteReactor(ToGrpcStatus(caller.status()));
  }
  if (absl::Status valid = CheckIdCount(request->user_ids_size(),
                                        kMaxSubscribeIds, "Subscribe");
      !valid.ok()) {
    return new RefusedWriteReactor(ToGrpcStatus(valid));
  }
  if (!caller->is_internal() &&
      fanout_.subscriptions_of(caller->user_id) >=
          options_.max_subscriptions_per_user) {
    return new RefusedWriteReactor(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("at most ", options_.max_subscriptions_per_user,
                     " presence subscriptions per user")));
  }
  // Distinct ids in request order.
  std::vector<uint64_t> watched;
  watched.reserve(request->user_ids_size());
  absl::flat_hash_set<uint64_t> seen;
  for (uint64_t id : request->user_ids()) {
    if (seen.insert(id).second) watched.push_back(id);
  }
  auto* reactor = new SubscribeReactor(&fanout_, *caller, std::move(watched));
  std::shared_ptr<PresenceSubscription> subscription = reactor->subscription();
  absl::Status submitted = pool_->Submit([this, caller = *caller,
                                          subscription] {
    // Internal subscribers see everyone: never re-checked.
    const absl::Time checked_at =
        caller.is_internal() ? absl::InfiniteFuture() : options_.clock();
    absl::StatusOr<absl::flat_hash_set<uint64_t>> visible =
        VisibleTo(caller, subscription->watched());
    absl::Status status = visible.status();
    if (status.ok()) {
      status = LoadStoredState(
          std::vector<uint64_t>(visible->begin(), visible->end()));
    }
    if (!status.ok()) {
      subscription->RequestFinish(ToGrpcStatus(status));
      return;
    }
    fanout_.Add(subscription, *std::move(visible), checked_at);
  });
  if (!submitted.ok()) subscription->RequestFinish(ToGrpcStatus(submitted));
  return reactor;
}

grpc::ServerUnaryReactor* PresenceServiceImpl::SetStatus(
    grpc::CallbackServerContext* context, const v1::SetStatusRequest* request,
    v1::SetStatusResponse*) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = authenticator_->Authenticate(*context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (caller->user_id == 0) {
    reactor->Finish(ToGrpcStatus(absl::PermissionDeniedError(
        "only users have a status; internal callers have none")));
    return reactor;
  }
  if (absl::Status valid = ValidateLabel("status_text", request->status_text(),
                                         0, kMaxStatusChars);
      !valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  absl::Status submitted = pool_->Submit(
      [this, user_id = caller->user_id, request, reactor] {
        absl::Status stored =
            users_->SetStatusText(user_id, request->status_text());
        if (stored.ok()) {
          table_.SetStatusText(user_id, request->status_text(),
                               options_.clock());
          if (replication_ != nullptr) {
            replication_->StatusChanged(user_id, request->status_text());
          }
        }
        reactor->Finish(ToGrpcStatus(stored));
      });
  if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
  return reactor;
}

absl::Status PresenceServiceImpl::AuthorizeNodeCall(
    const grpc::CallbackServerContext& context,
    const std::string& node_id) const {
  absl::StatusOr<Caller> caller = authenticator_->Authenticate(context);
  if (!caller.ok()) return caller.status();
  if (absl::Status role = RequireRole(*caller, {auth::v1::ROLE_INTERNAL});
      !role.ok()) {
    return role;
  }
  return ValidateLabel("node_id", node_id, 1, kMaxNodeIdChars);
}

grpc::ServerUnaryReactor* PresenceServiceImpl::OpenLease(
    grpc::CallbackServerContext* context, const v1::OpenLeaseRequest* request,
    v1::OpenLeaseResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = AuthorizeNodeCall(*context, request->node_id());
  if (status.ok() && (request->user_id() == 0 || request->session_id() == 0)) {
    status = absl::InvalidArgumentError(
        "OpenLease: user_id and session_id must be set");
  }
  if (status.ok()) {
    status = ValidateLabel("device_name", request->device_name(), 0,
                           kMaxDeviceNameChars);
  }
  if (status.ok() && !auth::v1::DeviceKind_IsValid(request->device_kind())) {
    status = absl::InvalidArgumentError("OpenLease: unknown device_kind");
  }
  if (status.ok()) {
    LeaseSpec spec;
    spec.node_id = request->node_id();
    spec.user_id = request->user_id();
    spec.session_id = request->session_id();
    spec.device_kind = request->device_kind();
    spec.device_name = request->device_name();
    response->set_lease_id(table_.OpenLease(spec, options_.clock()));
    if (replication_ != nullptr) replication_->LeaseOpened(spec);
    response->set_ttl_ms(
        static_cast<uint32_t>(options_.lease_ttl / absl::Milliseconds(1)));
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* PresenceServiceImpl::CloseLease(
    grpc::CallbackServerContext* context, const v1::CloseLeaseRequest* request,
    v1::CloseLeaseResponse*) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = AuthorizeNodeCall(*context, request->node_id());
  if (status.ok()) {
    const std::optional<uint64_t> session =
        table_.LeaseSession(request->node_id(), request->lease_id());
    table_.CloseLease(request->node_id(), request->lease_id(),
                      options_.clock());
    if (replication_ != nullptr && session.has_value()) {
      replication_->LeaseClosed(request->node_id(), *session);
    }
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* PresenceServiceImpl::Heartbeat(
    grpc::CallbackServerContext* context, const v1::HeartbeatRequest* request,
    v1::HeartbeatResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = AuthorizeNodeCall(*context, request->node_id());
  if (status.ok()) {
    const PresenceLeaseTable::HeartbeatResult result = table_.Heartbeat(
        request->node_id(), request->lease_count(), options_.clock());
    response->set_renewed(result.renewed);
    response->set_resync(result.resync);
    if (replication_ != nullptr) replication_->NodeHeartbeat(request->node_id());
    response->set_ttl_ms(
        static_cast<uint32_t>(options_.lease_ttl / absl::Milliseconds(1)));
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void PresenceServiceImpl::RefreshVisibility(
    const std::vector<std::shared_ptr<PresenceSubscription>>& due) {
  for (const auto& subscription : due) {
    if (subscription->finishing()) continue;
    // Internal subscribers (user 0) see everyone; nothing to refresh.
    if (subscription->viewer() == 0) continue;
    const absl::Time checked_at = options_.clock();
    absl::StatusOr<absl::flat_hash_set<uint64_t>> visible =
        visibility_.Visible(subscription->viewer(), subscription->watched());
    if (!visible.ok()) {
      spdlog::warn("presence: visibility refresh failed: {}",
                   visible.status().ToString());
      return;  // retried at the next refresh
    }
    fanout_.UpdateVisible(subscription, *std::move(visible), checked_at);
  }
}

void PresenceServiceImpl::RunTicker() {
  absl::Time next_refresh_scan =
      options_.clock() + std::min(options_.visibility_refresh / 4,
                                  absl::Seconds(1));
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      const auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_;
      };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.tick)) {
        return;
      }
    }
    const absl::Time now = options_.clock();
    table_.Advance(now);

    std::vector<uint64_t> to_load = table_.TakeUsersToLoad(kLoadBatch);
    if (!to_load.empty()) {
      absl::Status submitted =
          pool_->Submit([this, to_load = std::move(to_load)] {
            absl::Status loaded = LoadStoredState(to_load);
            if (!loaded.ok()) {
              spdlog::warn("presence: loading stored state failed: {}",
                           loaded.ToString());
            }
          });
      if (!submitted.ok()) {
        spdlog::warn("presence: stored state load not queued: {}",
                     submitted.ToString());
      }
    }

    if (now >= next_refresh_scan) {
      next_refresh_scan =
          now + std::min(options_.visibility_refresh / 4, absl::Seconds(1));
      std::vector<std::shared_ptr<PresenceSubscription>> due =
          fanout_.CheckedBefore(now - options_.visibility_refresh);
      if (!due.empty() && !refreshing_visibility_.exchange(true)) {
        absl::Status submitted =
            pool_->Submit([this, due = std::move(due)] {
              RefreshVisibility(due);
              refreshing_visibility_ = false;
            });
        if (!submitted.ok()) refreshing_visibility_ = false;
      }
    }
  }
}

void PresenceServiceImpl::RunLastSeenWriter() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      const auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_;
      };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping),
                               options_.last_seen_flush_period)) {
        return;
      }
    }
    WriteLastSeen(/*flush_all=*/false);
  }
}

bool PresenceServiceImpl::WriteLastSeen(bool flush_all) {
  const absl::Time now = options_.clock();
  for (;;) {
    const std::vector<std::pair<uint64_t, absl::Time>> due =
        table_.TakeLastSeenDue(now, flush_all, options_.last_seen_batch);
    if (due.empty()) return true;
    absl::Status written = users_->UpdateLastSeen(due);
    if (!written.ok()) {
      ++last_seen_write_failures_;
      table_.RestoreLastSeenDue(due);
      spdlog::warn("presence: writing {} last_seen values failed: {}",
                   due.size(), written.ToString());
      return false;
    }
    last_seen_rows_written_ += due.size();
    if (due.size() < options_.last_seen_batch) return true;
  }
}

}  // namespace im::presence
