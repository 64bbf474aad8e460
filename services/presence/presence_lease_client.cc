#include "services/presence/presence_lease_client.h"

#include <algorithm>
#include <utility>

#include "services/common/authenticator.h"
#include "services/common/text.h"
#include "spdlog/spdlog.h"

namespace im::presence {
namespace {

// Heartbeat period before presence has announced its TTL (the first
// heartbeat goes out at once, so this rarely matters).
constexpr absl::Duration kDefaultHeartbeatInterval = absl::Seconds(10);
constexpr absl::Duration kMinHeartbeatInterval = absl::Milliseconds(10);
// A failed heartbeat is retried this soon (or at the interval if shorter).
constexpr absl::Duration kHeartbeatRetry = absl::Seconds(1);

}  // namespace

// One OpenLease or CloseLease in flight.
struct PresenceLeaseClient::Call {
  uint64_t session_id = 0;
  bool open = false;
  grpc::ClientContext context;
  v1::OpenLeaseRequest open_request;
  v1::OpenLeaseResponse open_response;
  v1::CloseLeaseRequest close_request;
  v1::CloseLeaseResponse close_response;
};

absl::StatusOr<std::unique_ptr<PresenceLeaseClient>>
PresenceLeaseClient::Create(const Options& options,
                            std::shared_ptr<grpc::Channel> channel,
                            TokenSource token_source) {
  if (absl::Status valid = ValidateLabel("node_id", options.node_id, 1, 128);
      !valid.ok()) {
    return valid;
  }
  if (channel == nullptr || !token_source) {
    return absl::InvalidArgumentError(
        "the lease client needs a channel and a token source");
  }
  if (options.max_in_flight < 1 || options.rpc_timeout <= absl::ZeroDuration() ||
      options.min_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.min_backoff ||
      options.heartbeat_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "lease client: max_in_flight >= 1, positive rpc_timeout and backoff "
        "(min <= max), heartbeat_interval >= 0");
  }
  return std::unique_ptr<PresenceLeaseClient>(new PresenceLeaseClient(
      options, std::move(channel), std::move(token_source)));
}

PresenceLeaseClient::PresenceLeaseClient(const Options& options,
                                         std::shared_ptr<grpc::Channel> channel,
                                         TokenSource token_source)
    : options_(options),
      stub_(v1::PresenceService::NewStub(channel)),
      token_source_(std::move(token_source)) {
  absl::MutexLock lock(&mu_);
  heartbeat_interval_ = options_.heartbeat_interval > absl::ZeroDuration()
                            ? options_.heartbeat_interval
                            : kDefaultHeartbeatInterval;
  // The first heartbeat goes out at once: it learns the TTL, and clears
  // leases a previous process with this node id left behind.
  next_heartbeat_ = absl::Now();
  backoff_ = options_.min_backoff;
  worker_ = std::thread([this] { Run(); });
}

PresenceLeaseClient::~PresenceLeaseClient() { Shutdown(absl::ZeroDuration()); }

void PresenceLeaseClient::MarkLocked(uint64_t session_id, Session& session) {
  if (session.queued || session.in_flight) return;
  session.queued = true;
  queue_.push_back(session_id);
}

bool PresenceLeaseClient::NeedsCallLocked(const Session& session) const {
  if (session.streams > 0) return session.lease_id == 0 && !session.rejected;
  return session.lease_id != 0;
}

void PresenceLeaseClient::OnStreamOpened(const DeviceStream& stream) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  Session& session = sessions_[stream.session_id];
  if (session.streams++ > 0) return;
  session.user_id = stream.user_id;
  session.device_kind = stream.device_kind;
  session.device_name = stream.device_name;
  session.rejected = false;
  MarkLocked(stream.session_id, session);
}

void PresenceLeaseClient::OnStreamClosed(uint64_t user_id,
                                         uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  auto it = sessions_.find(session_id);
  if (it == sessions_.end() || it->second.streams == 0 ||
      it->second.user_id != user_id) {
    spdlog::warn("presence lease client: close of a stream never opened "
                 "(user {}, session {})",
                 user_id, session_id);
    return;
  }
  if (--it->second.streams == 0) MarkLocked(session_id, it->second);
}

void PresenceLeaseClient::Run() {
  mu_.Lock();
  for (;;) {
    if (stopping_) break;
    const absl::Time now = absl::Now();
    if (now >= next_heartbeat_) {
      // The count a heartbeat carries is exact only with nothing in flight.
      const auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || in_flight_ == 0;
      };
      mu_.Await(absl::Condition(&idle));
      if (stopping_) break;
      mu_.Unlock();
      SendHeartbeat();
      mu_.Lock();
      continue;
    }
    if (!queue_.empty() && in_flight_ < options_.max_in_flight &&
        now >= retry_after_) {
      const uint64_t session_id = queue_.front();
      queue_.pop_front();
      StartCall(session_id);
      continue;
    }
    absl::Time wake = next_heartbeat_;
    if (!queue_.empty() && retry_after_ > now) {
      wake = std::min(wake, retry_after_);
    }
    const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ ||
             (!queue_.empty() && in_flight_ < options_.max_in_flight &&
              absl::Now() >= retry_after_);
    };
    mu_.AwaitWithDeadline(absl::Condition(&ready), wake);
  }
  mu_.Unlock();
}

void PresenceLeaseClient::StartCall(uint64_t session_id) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return;
  Session& session = it->second;
  session.queued = false;
  if (!NeedsCallLocked(session)) {
    if (session.streams == 0 && session.lease_id == 0) sessions_.erase(it);
    return;
  }
  auto* call = new Call;
  call->session_id = session_id;
  call->open = session.streams > 0;
  if (call->open) {
    call->open_request.set_node_id(options_.node_id);
    call->open_request.set_user_id(session.user_id);
    call->open_request.set_session_id(session_id);
    call->open_request.set_device_kind(session.device_kind);
    call->open_request.set_device_name(session.device_name);
    ++stats_.opens_sent;
  } else {
    call->close_request.set_node_id(options_.node_id);
    call->close_request.set_lease_id(session.lease_id);
    ++stats_.closes_sent;
  }
  session.in_flight = true;
  ++in_flight_;

  // Started outside the lock: a completion may run on this thread.
  mu_.Unlock();
  call->context.set_deadline(absl::ToChronoTime(absl::Now() +
                                                options_.rpc_timeout));
  AttachBearerToken(&call->context, token_source_());
  const auto done = [this, call](grpc::Status status) {
    OnCallDone(call, status);
  };
  if (call->open) {
    stub_->async()->OpenLease(&call->context, &call->open_request,
                              &call->open_response, done);
  } else {
    stub_->async()->CloseLease(&call->context, &call->close_request,
                               &call->close_response, done);
  }
  mu_.Lock();
}

void PresenceLeaseClient::BackOffLocked(absl::Time now) {
  retry_after_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
}

void PresenceLeaseClient::OnCallDone(Call* call, const grpc::Status& status) {
  std::unique_ptr<Call> owned(call);
  absl::MutexLock lock(&mu_);
  --in_flight_;
  auto it = sessions_.find(call->session_id);
  if (it == sessions_.end()) return;  // cannot happen: in_flight pins it
  Session& session = it->second;
  session.in_flight = false;
  if (status.ok()) {
    backoff_ = options_.min_backoff;
    if (call->open) {
      session.lease_id = call->open_response.lease_id();
      ++leases_held_;
    } else {
      session.lease_id = 0;
      --leases_held_;
    }
  } else {
    ++stats_.failed_calls;
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      // Retrying the same request cannot help.
      spdlog::error("presence lease client: presence refused {} of session "
                    "{}: {}",
                    call->open ? "OpenLease" : "CloseLease", call->session_id,
                    status.error_message());
      if (call->open) {
        session.rejected = true;
      } else {
        session.lease_id = 0;
        --leases_held_;
      }
    } else {
      spdlog::warn("presence lease client: {} failed: {} {}",
                   call->open ? "OpenLease" : "CloseLease",
                   static_cast<int>(status.error_code()),
                   status.error_message());
      BackOffLocked(absl::Now());
    }
  }
  if (NeedsCallLocked(session)) {
    MarkLocked(call->session_id, session);
  } else if (session.streams == 0 && session.lease_id == 0) {
    sessions_.erase(it);
  }
}

void PresenceLeaseClient::SendHeartbeat() {
  v1::HeartbeatRequest request;
  request.set_node_id(options_.node_id);
  {
    absl::MutexLock lock(&mu_);
    request.set_lease_count(static_cast<uint32_t>(leases_held_));
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  AttachBearerToken(&context, token_source_());
  v1::HeartbeatResponse response;
  const grpc::Status status = stub_->Heartbeat(&context, request, &response);

  absl::MutexLock lock(&mu_);
  ++stats_.heartbeats;
  const absl::Time now = absl::Now();
  if (!status.ok()) {
    ++stats_.failed_calls;
    spdlog::warn("presence lease client: heartbeat failed: {} {}",
                 static_cast<int>(status.error_code()), status.error_message());
    next_heartbeat_ = now + std::min(heartbeat_interval_, kHeartbeatRetry);
    return;
  }
  if (options_.heartbeat_interval == absl::ZeroDuration() &&
      response.ttl_ms() > 0) {
    heartbeat_interval_ = std::max(
        absl::Milliseconds(response.ttl_ms()) / 3, kMinHeartbeatInterval);
  }
  next_heartbeat_ = now + heartbeat_interval_;
  if (!response.resync()) return;
  // Presence lost track (it restarted, or this node did): open again
  // everything with open streams; presence drops the rest once the counts
  // agree.
  ++stats_.resyncs;
  spdlog::info("presence lease client: resync requested ({} leases here, {} "
               "at presence)",
               request.lease_count(), response.renewed());
  for (auto& [session_id, session] : sessions_) {
    if (session.streams == 0) continue;
    if (session.lease_id != 0) {
      session.lease_id = 0;
      --leases_held_;
    }
    session.rejected = false;
    MarkLocked(session_id, session);
  }
}

void PresenceLeaseClient::Shutdown(absl::Duration flush_timeout) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    const auto flushed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return queue_.empty() && in_flight_ == 0;
    };
    mu_.AwaitWithTimeout(absl::Condition(&flushed), flush_timeout);
    stopping_ = true;
  }
  worker_.join();
  // Completions touch this object: wait for the last (bounded by the
  // calls' deadline).
  absl::MutexLock lock(&mu_);
  const auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ == 0;
  };
  mu_.Await(absl::Condition(&idle));
}

PresenceLeaseClient::Stats PresenceLeaseClient::stats() const {
  absl::MutexLock lock(&mu_);
  Stats stats = stats_;
  stats.sessions = sessions_.size();
  stats.leases_held = leases_held_;
  return stats;
}

}  // namespace im::presence
