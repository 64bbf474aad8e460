#include "services/presence/redis_lease_replication.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace im::presence {
namespace {

using ::im::cluster::v1::PresenceEvent;
using ::im::cluster::v1::PresenceEvents;

constexpr size_t kMaxEventsPerPublish = 1000;
constexpr size_t kMaxBytesPerPublish = 256 << 10;
// While cut off, remote nodes are renewed this often.
constexpr absl::Duration kFreezeTick = absl::Milliseconds(500);

void ToLease(const LeaseSpec& spec, cluster::v1::Lease* lease) {
  lease->set_user_id(spec.user_id);
  lease->set_session_id(spec.session_id);
  lease->set_device_kind(spec.device_kind);
  lease->set_device_name(spec.device_name);
}

LeaseSpec FromLease(const std::string& node_id,
                    const cluster::v1::Lease& lease) {
  LeaseSpec spec;
  spec.node_id = node_id;
  spec.user_id = lease.user_id();
  spec.session_id = lease.session_id();
  spec.device_kind = lease.device_kind();
  spec.device_name = lease.device_name();
  return spec;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisLeaseReplication>>
RedisLeaseReplication::Create(const Options& options,
                              PresenceLeaseTable* table) {
  if (table == nullptr || options.instance_id.empty() ||
      options.key_prefix.empty()) {
    return absl::InvalidArgumentError(
        "lease replication needs a table, an instance id and a key prefix");
  }
  auto replication = std::unique_ptr<RedisLeaseReplication>(
      new RedisLeaseReplication(options, table));
  replication->Start();
  return replication;
}

RedisLeaseReplication::RedisLeaseReplication(const Options& options,
                                             PresenceLeaseTable* table)
    : options_(options), table_(table) {}

RedisLeaseReplication::~RedisLeaseReplication() { Stop(); }

std::string RedisLeaseReplication::Channel() const {
  return absl::StrCat(options_.key_prefix, "presence:all");
}

void RedisLeaseReplication::Start() {
  RedisSubscriber::Options subscriber;
  subscriber.connection = options_.redis;
  subscriber.channels = {Channel()};
  subscriber.client_name =
      absl::StrCat("im-presence-sub-", options_.instance_id);
  subscriber.min_backoff = options_.min_backoff;
  subscriber.max_backoff = options_.max_backoff;
  RedisSubscriber::Callbacks callbacks;
  callbacks.on_message = [this](absl::string_view, absl::string_view payload) {
    OnMessage(payload);
  };
  callbacks.on_subscribed = [this] { OnSubscribed(); };
  callbacks.on_lost = [this] { OnLost(); };
  // Fails only for bad arguments, which are fixed here.
  subscriber_ = *RedisSubscriber::Start(subscriber, std::move(callbacks));
  publisher_ = std::thread([this] { RunPublisher(); });
}

void RedisLeaseReplication::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  subscriber_->Stop();
  publisher_.join();
}

bool RedisLeaseReplication::connected() const {
  absl::MutexLock lock(&mu_);
  return subscribed_ && publisher_up_;
}

RedisLeaseReplication::Stats RedisLeaseReplication::stats() const {
  Stats stats;
  stats.events_sent = events_sent_.load();
  stats.events_received = events_received_.load();
  stats.sync_requests = sync_requests_.load();
  stats.events_dropped = events_dropped_.load();
  absl::MutexLock lock(&mu_);
  stats.pending = queue_.size() + in_flight_;
  return stats;
}

// ------------------------------------------------------------- outgoing ----

void RedisLeaseReplication::Publish(PresenceEvent event) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  queue_.push_back(std::move(event));
  // Dropping is safe: after reconnecting, owners publish every lease they
  // hold and heartbeats reveal any other difference.
  while (queue_.size() + in_flight_ > options_.max_pending_events &&
         !queue_.empty()) {
    queue_.pop_front();
    events_dropped_.fetch_add(1);
  }
}

void RedisLeaseReplication::Touch(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  owned_[node_id] = absl::Now();
}

bool RedisLeaseReplication::OwnsLocked(const std::string& node_id,
                                       absl::Time now) const {
  auto it = owned_.find(node_id);
  if (it == owned_.end() || now - it->second > options_.lease_ttl) {
    return false;
  }
  // Moved to another presence node since it last called here.
  auto remote = remote_.find(node_id);
  return remote == remote_.end() || remote->second < it->second;
}

void RedisLeaseReplication::LeaseOpened(const LeaseSpec& spec) {
  Touch(spec.node_id);
  PresenceEvent event;
  event.mutable_opened()->set_node_id(spec.node_id);
  ToLease(spec, event.mutable_opened()->mutable_lease());
  Publish(std::move(event));
}

void RedisLeaseReplication::LeaseClosed(const std::string& node_id,
                                        uint64_t session_id) {
  Touch(node_id);
  PresenceEvent event;
  event.mutable_closed()->set_node_id(node_id);
  event.mutable_closed()->set_session_id(session_id);
  Publish(std::move(event));
}

void RedisLeaseReplication::NodeHeartbeat(const std::string& node_id) {
  Touch(node_id);
  const PresenceLeaseTable::NodeSummary summary =
      table_->SummarizeNode(node_id);
  PresenceEvent event;
  event.mutable_heartbeat()->set_node_id(node_id);
  event.mutable_heartbeat()->set_lease_count(summary.lease_count);
  event.mutable_heartbeat()->set_digest(summary.digest);
  Publish(std::move(event));
}

void RedisLeaseReplication::StatusChanged(uint64_t user_id,
                                          const std::string& text) {
  PresenceEvent event;
  event.mutable_status()->set_user_id(user_id);
  event.mutable_status()->set_status_text(text);
  Publish(std::move(event));
}

PresenceEvent RedisLeaseReplication::LeasesOf(
    const std::string& node_id) const {
  PresenceEvent event;
  event.mutable_leases()->set_node_id(node_id);
  for (const LeaseSpec& spec : table_->NodeLeases(node_id)) {
    ToLease(spec, event.mutable_leases()->add_leases());
  }
  return event;
}

// ------------------------------------------------------------- incoming ----

void RedisLeaseReplication::OnSubscribed() {
  std::vector<std::string> owned;
  {
    absl::MutexLock lock(&mu_);
    subscribed_ = true;
    const absl::Time now = absl::Now();
    for (const auto& [node, at] : owned_) {
      if (OwnsLocked(node, now)) owned.push_back(node);
    }
  }
  spdlog::info(
      "presence replication: subscribed; asking the other presence "
      "nodes for their leases, publishing {} node(s) served here",
      owned.size());
  PresenceEvent sync;
  sync.mutable_sync();
  Publish(std::move(sync));
  for (const std::string& node : owned) Publish(LeasesOf(node));
}

void RedisLeaseReplication::OnLost() {
  absl::MutexLock lock(&mu_);
  subscribed_ = false;
  spdlog::warn(
      "presence replication: subscription lost; remote nodes are "
      "kept as they were until it is back");
}

void RedisLeaseReplication::OnMessage(absl::string_view payload) {
  PresenceEvents events;
  if (!events.ParseFromArray(payload.data(),
                             static_cast<int>(payload.size()))) {
    spdlog::warn("presence replication: dropped events that do not parse");
    return;
  }
  if (events.origin() == options_.instance_id) return;
  const absl::Time now = absl::Now();
  for (const PresenceEvent& event : events.events()) {
    events_received_.fetch_add(1);
    Apply(event, now);
  }
}

void RedisLeaseReplication::Apply(const PresenceEvent& event, absl::Time now) {
  auto heard = [this, now](const std::string& node) {
    absl::MutexLock lock(&mu_);
    remote_[node] = now;
  };
  switch (event.body_case()) {
    case PresenceEvent::kOpened:
      heard(event.opened().node_id());
      table_->OpenLease(
          FromLease(event.opened().node_id(), event.opened().lease()), now);
      return;
    case PresenceEvent::kClosed:
      heard(event.closed().node_id());
      table_->CloseSessionLease(event.closed().node_id(),
                                event.closed().session_id(), now);
      return;
    case PresenceEvent::kHeartbeat: {
      const std::string& node = event.heartbeat().node_id();
      heard(node);
      table_->RenewNode(node, now);
      const PresenceLeaseTable::NodeSummary mine = table_->SummarizeNode(node);
      if (mine.lease_count == event.heartbeat().lease_count() &&
          mine.digest == event.heartbeat().digest()) {
        return;
      }
      {
        absl::MutexLock lock(&mu_);
        absl::Time& last = last_sync_request_[node];
        if (now - last < options_.sync_request_interval) return;
        last = now;
      }
      sync_requests_.fetch_add(1);
      PresenceEvent request;
      request.mutable_sync()->set_node_id(node);
      Publish(std::move(request));
      return;
    }
    case PresenceEvent::kLeases: {
      const std::string& node = event.leases().node_id();
      heard(node);
      std::vector<LeaseSpec> specs;
      specs.reserve(event.leases().leases_size());
      for (const cluster::v1::Lease& lease : event.leases().leases()) {
        specs.push_back(FromLease(node, lease));
      }
      table_->ReplaceNodeLeases(node, specs, now);
      return;
    }
    case PresenceEvent::kSync: {
      std::vector<std::string> nodes;
      {
        absl::MutexLock lock(&mu_);
        if (event.sync().node_id().empty()) {
          for (const auto& [node, at] : owned_) {
            if (OwnsLocked(node, now)) nodes.push_back(node);
          }
        } else if (OwnsLocked(event.sync().node_id(), now)) {
          nodes.push_back(event.sync().node_id());
        }
      }
      for (const std::string& node : nodes) Publish(LeasesOf(node));
      return;
    }
    case PresenceEvent::kStatus:
      table_->SetStatusText(event.status().user_id(),
                            event.status().status_text(), now);
      return;
    case PresenceEvent::BODY_NOT_SET:
      return;
  }
}

// ------------------------------------------------------------ publisher ----

void RedisLeaseReplication::RunPublisher() {
  RedisBackoff backoff(options_.min_backoff, options_.max_backoff);
  std::unique_ptr<RedisConnection> redis;
  std::vector<PresenceEvent> batch;
  absl::Time next_freeze = absl::Now();
  for (;;) {
    std::vector<std::string> frozen;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      if (batch.empty()) {
        mu_.AwaitWithTimeout(absl::Condition(&has_work), kFreezeTick);
      }
      if (stopping_) break;
      const absl::Time now = absl::Now();
      if (!subscribed_ && now >= next_freeze) {
        next_freeze = now + kFreezeTick;
        for (const auto& [node, at] : remote_) {
          if (!OwnsLocked(node, now)) frozen.push_back(node);
        }
      }
      while (batch.size() < kMaxEventsPerPublish && !queue_.empty()) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ = batch.size();
    }
    for (const std::string& node : frozen) table_->RenewNode(node, absl::Now());
    if (redis == nullptr || redis->broken()) {
      {
        absl::MutexLock lock(&mu_);
        publisher_up_ = false;
      }
      absl::StatusOr<std::unique_ptr<RedisConnection>> connected =
          RedisConnection::Connect(options_.redis);
      if (!connected.ok()) {
        redis.reset();
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff.Next());
        continue;
      }
      redis = *std::move(connected);
      backoff.Reset();
      absl::MutexLock lock(&mu_);
      publisher_up_ = true;
    }
    if (batch.empty()) continue;
    // PUBLISHes of at most kMaxBytesPerPublish each, in order.
    size_t publishes = 0;
    PresenceEvents events;
    events.set_origin(options_.instance_id);
    for (size_t i = 0; i < batch.size(); ++i) {
      *events.add_events() = batch[i];
      if (events.ByteSizeLong() >= kMaxBytesPerPublish ||
          i + 1 == batch.size()) {
        redis->Append({"PUBLISH", Channel(), events.SerializeAsString()});
        ++publishes;
        events.clear_events();
      }
    }
    bool ok = true;
    for (size_t i = 0; i < publishes && ok; ++i) ok = redis->ReadReply().ok();
    if (!ok) continue;  // the batch goes again on a new connection
    events_sent_.fetch_add(batch.size());
    batch.clear();
    absl::MutexLock lock(&mu_);
    in_flight_ = 0;
  }
  absl::MutexLock lock(&mu_);
  publisher_up_ = false;
}

}  // namespace im::presence
