#include "services/common/revocation_watcher.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "services/common/proto_time.h"
#include "spdlog/spdlog.h"

namespace im {
RevocationWatcher::RevocationWatcher(
    const Options& options, std::shared_ptr<grpc::Channel> auth_channel,
    RevocationSet* revocations, InternalTokenSource* tokens)
    : options_(options),
      stub_(auth::v1::AuthService::NewStub(std::move(auth_channel))),
      revocations_(revocations),
      tokens_(tokens) {}

absl::StatusOr<std::unique_ptr<RevocationWatcher>> RevocationWatcher::Create(
    const Options& options, std::shared_ptr<grpc::Channel> auth_channel,
    RevocationSet* revocations, InternalTokenSource* tokens) {
  if (auth_channel == nullptr || revocations == nullptr || tokens == nullptr) {
    return absl::InvalidArgumentError(
        "revocation watcher needs a channel, a set and a token source");
  }
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff ||
      options.prune_interval <= absl::ZeroDuration() ||
      options.retention <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "revocation watcher durations must be positive and "
        "initial_backoff <= max_backoff");
  }
  std::unique_ptr<RevocationWatcher> watcher(new RevocationWatcher(
      options, std::move(auth_channel), revocations, tokens));
  watcher->reader_ = std::thread([w = watcher.get()] { w->RunReader(); });
  watcher->pruner_ = std::thread([w = watcher.get()] { w->RunPruner(); });
  return watcher;
}

RevocationWatcher::~RevocationWatcher() { Stop(); }

void RevocationWatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (active_call_ != nullptr) active_call_->TryCancel();
  }
  if (reader_.joinable()) reader_.join();
  if (pruner_.joinable()) pruner_.join();
}

bool RevocationWatcher::connected() const {
  absl::MutexLock lock(&mu_);
  return connected_;
}

bool RevocationWatcher::WaitUntilConnected(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&connected_), timeout);
  return connected_;
}

uint64_t RevocationWatcher::snapshots_applied() const {
  absl::MutexLock lock(&mu_);
  return snapshots_applied_;
}

bool RevocationWatcher::SleepUnlessStopped(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

void RevocationWatcher::Apply(const auth::v1::RevocationBatch& batch) {
  const absl::Time horizon = absl::Now() - options_.retention;
  for (const auth::v1::RevokedSession& session : batch.sessions()) {
    const absl::Time revoked_at = FromProtoTime(session.revoked_at());
    if (revoked_at < horizon) continue;
    revocations_->Add(session.session_id(), session.user_id(), revoked_at);
  }
}

bool RevocationWatcher::WatchOnce() {
  grpc::ClientContext context;
  AttachBearerToken(&context, tokens_->Token());
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    active_call_ = &context;
  }
  std::unique_ptr<grpc::ClientReader<auth::v1::RevocationBatch>> reader =
      stub_->WatchRevocations(&context, auth::v1::WatchRevocationsRequest());
  bool got_snapshot = false;
  auth::v1::RevocationBatch batch;
  while (reader->Read(&batch)) {
    Apply(batch);
    if (batch.snapshot() && !got_snapshot) {
      got_snapshot = true;
      absl::MutexLock lock(&mu_);
      connected_ = true;
      ++snapshots_applied_;
      spdlog::info("revocation watcher: in sync ({} revoked sessions known)",
                   revocations_->size());
    }
  }
  const grpc::Status status = reader->Finish();
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    active_call_ = nullptr;
    connected_ = false;
    stopping = stopping_;
  }
  if (!stopping) {
    spdlog::warn("revocation watcher: stream ended ({}: {}); reconnecting",
                 static_cast<int>(status.error_code()), status.error_message());
  }
  return got_snapshot;
}

void RevocationWatcher::RunReader() {
  absl::BitGen random;
  absl::Duration backoff = options_.initial_backoff;
  for (;;) {
    // A stream that got as far as its snapshot was healthy: start the
    // backoff over.
    if (WatchOnce()) backoff = options_.initial_backoff;
    const absl::Duration wait = backoff * absl::Uniform(random, 0.5, 1.0);
    if (!SleepUnlessStopped(wait)) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void RevocationWatcher::RunPruner() {
  while (SleepUnlessStopped(options_.prune_interval)) {
    revocations_->PruneOlderThan(absl::Now() - options_.retention);
  }
}

}  // namespace im
