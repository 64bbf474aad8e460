#include "services/message/redis_delivery_bus.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace im::message {
namespace {

using ::im::cluster::v1::DeliveryBatch;
using ::im::cluster::v1::DeliveryNotice;
using ::im::message::v1::MemberEvent;

constexpr uint32_t kMembershipPage = 500;
// Tries per user resync before its sessions are closed for the client to
// resume (which replays from the log).
constexpr int kResyncAttempts = 3;

const ConversationMembers& NoMembers() {
  static const ConversationMembers* const none = new ConversationMembers();
  return *none;
}

bool AddsMembers(const storage::Entry& entry) {
  return entry.has_member_event() &&
         entry.member_event().kind() == MemberEvent::KIND_ADDED;
}

// Sorted union of two sorted id lists.
void MergeInto(std::vector<uint64_t>& into, absl::Span<const uint64_t> more) {
  std::vector<uint64_t> merged;
  merged.reserve(into.size() + more.size());
  std::set_union(into.begin(), into.end(), more.begin(), more.end(),
                 std::back_inserter(merged));
  into = std::move(merged);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisDeliveryBus>> RedisDeliveryBus::Create(
    const Options& options, DeliveryRouter* router, MembershipCache* members,
    storage::ConversationReader* reader) {
  if (router == nullptr || members == nullptr || reader == nullptr) {
    return absl::InvalidArgumentError(
        "the Redis delivery bus needs a router, a membership cache and a "
        "reader");
  }
  if (options.node_id.empty() || options.key_prefix.empty()) {
    return absl::InvalidArgumentError(
        "the Redis delivery bus needs a node id and a key prefix");
  }
  if (options.route_ttl < absl::Seconds(3)) {
    return absl::InvalidArgumentError("route_ttl must be at least 3s");
  }
  if (options.max_pending_notices < 1 || options.max_notices_per_round < 1 ||
      options.resync_threads < 1) {
    return absl::InvalidArgumentError(
        "max_pending_notices, max_notices_per_round and resync_threads must "
        "be at least 1");
  }
  auto bus = std::unique_ptr<RedisDeliveryBus>(
      new RedisDeliveryBus(options, router, members, reader));
  bus->StartThreads();
  router->SetLocalUsersListener(bus.get());
  return bus;
}

RedisDeliveryBus::RedisDeliveryBus(const Options& options,
                                   DeliveryRouter* router,
                                   MembershipCache* members,
                                   storage::ConversationReader* reader)
    : options_(options), router_(router), members_(members), reader_(reader) {}

void RedisDeliveryBus::StartThreads() {
  WorkerPool::Options pool;
  pool.name = "redis-resync";
  pool.threads = options_.resync_threads;
  pool.max_queue = 1 << 20;
  resync_pool_ = std::make_unique<WorkerPool>(pool);
  timers_ = std::make_unique<TimerQueue>();

  RedisSubscriber::Options subscriber;
  subscriber.connection = options_.redis;
  subscriber.channels = {NodeChannel(options_.node_id), SharedChannel()};
  subscriber.client_name = absl::StrCat("im-message-sub-", options_.node_id);
  subscriber.min_backoff = options_.min_backoff;
  subscriber.max_backoff = options_.max_backoff;
  RedisSubscriber::Callbacks callbacks;
  callbacks.on_message = [this](absl::string_view, absl::string_view payload) {
    OnMessage(payload);
  };
  callbacks.on_subscribed = [this] { OnSubscribed(); };
  callbacks.on_lost = [this] { OnSubscriptionLost(); };
  // Fails only for bad arguments, which are fixed here.
  subscriber_ = *RedisSubscriber::Start(subscriber, std::move(callbacks));
  publisher_ = std::thread([this] { RunPublisher(); });
}

RedisDeliveryBus::~RedisDeliveryBus() { Stop(); }

void RedisDeliveryBus::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  shutting_down_.store(true);
  // The publisher hands on what is queued, within flush_timeout.
  publisher_.join();
  subscriber_->Stop();
  router_->SetLocalUsersListener(nullptr);
  timers_.reset();
  resync_pool_.reset();
  std::vector<absl::AnyInvocable<void() &&>> waiters;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [user, route] : routes_) {
      for (auto& waiter : route.waiters) waiters.push_back(std::move(waiter));
      route.waiters.clear();
    }
  }
  for (auto& waiter : waiters) std::move(waiter)();
}

std::string RedisDeliveryBus::RouteKey(uint64_t user_id) const {
  return absl::StrCat(options_.key_prefix, "msg:route:", user_id);
}

std::string RedisDeliveryBus::NodeChannel(const std::string& node_id) const {
  return absl::StrCat(options_.key_prefix, "msg:node:", node_id);
}

std::string RedisDeliveryBus::SharedChannel() const {
  return absl::StrCat(options_.key_prefix, "msg:all");
}

bool RedisDeliveryBus::connected() const {
  absl::MutexLock lock(&mu_);
  return connected_;
}

RedisDeliveryBus::Stats RedisDeliveryBus::stats() const {
  Stats stats;
  stats.notices_sent = notices_sent_.load();
  stats.batches_sent = batches_sent_.load();
  stats.notices_received = notices_received_.load();
  stats.notices_dropped = notices_dropped_.load();
  stats.user_resyncs = user_resyncs_.load();
  stats.reconnects = reconnects_.load();
  absl::MutexLock lock(&mu_);
  stats.pending = queue_.size() + in_flight_count_.load();
  return stats;
}

// ---------------------------------------------------------- local side ----

void RedisDeliveryBus::OnUserArrived(uint64_t user_id) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  Route& route = routes_[user_id];
  route.generation = ++next_generation_;
  route.written = false;
  route.needs_resync = false;
  route_ops_.push_back(RouteOp{user_id, true, route.generation});
}

void RedisDeliveryBus::OnUserLeft(uint64_t user_id) {
  // Sessions still waiting are closed (their user has none left); starting
  // them would do nothing, so they are dropped, outside the lock.
  std::vector<absl::AnyInvocable<void() &&>> dropped;
  absl::MutexLock lock(&mu_);
  auto it = routes_.find(user_id);
  if (it == routes_.end()) return;
  dropped = std::move(it->second.waiters);
  routes_.erase(it);
  if (!stopped_) route_ops_.push_back(RouteOp{user_id, false, 0});
}

void RedisDeliveryBus::WhenRoutable(uint64_t user_id,
                                    absl::AnyInvocable<void() &&> start) {
  {
    absl::MutexLock lock(&mu_);
    auto it = routes_.find(user_id);
    if (!stopped_ && it != routes_.end() && !it->second.written) {
      if (connected_) {
        it->second.waiters.push_back(std::move(start));
        return;
      }
      // Cut off: serve this node's streams now, catch up once back.
      it->second.needs_resync = true;
    }
  }
  std::move(start)();
}

void RedisDeliveryBus::Enqueue(Outgoing outgoing) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  if (outgoing.droppable && !connected_) return;
  queue_.push_back(std::move(outgoing));
  while (queue_.size() + in_flight_count_.load() >
             options_.max_pending_notices &&
         !queue_.empty()) {
    if (!queue_.front().droppable) dropped_since_connected_ = true;
    queue_.pop_front();
    notices_dropped_.fetch_add(1);
  }
}

void RedisDeliveryBus::PublishEntry(storage::Entry entry,
                                    const ConversationMembers& members,
                                    absl::Span<const uint64_t> also_to) {
  const uint64_t conversation_id = entry.conversation_id();
  if (entry.has_member_event()) {
    Outgoing changed;
    changed.broadcast = true;
    changed.notice.set_members_changed(conversation_id);
    Enqueue(std::move(changed));
  }
  Outgoing outgoing;
  outgoing.users = members.member_ids;
  std::vector<uint64_t> extra(also_to.begin(), also_to.end());
  std::sort(extra.begin(), extra.end());
  MergeInto(outgoing.users, extra);
  if (entry.ByteSizeLong() > options_.max_inline_entry_bytes) {
    outgoing.notice.mutable_position()->set_conversation_id(conversation_id);
    outgoing.notice.mutable_position()->set_seq(entry.seq());
  } else {
    *outgoing.notice.mutable_entry() = entry;
  }
  Enqueue(std::move(outgoing));
  if (AddsMembers(entry)) {
    ScheduleAddedMemberChecks(
        conversation_id,
        std::vector<uint64_t>(entry.member_event().user_ids().begin(),
                              entry.member_event().user_ids().end()));
  }
  router_->PublishEntry(std::move(entry), members, also_to);
}

void RedisDeliveryBus::PublishEphemeral(const FramePtr& frame,
                                        absl::Span<const uint64_t> users,
                                        uint64_t except_user) {
  router_->PublishEphemeral(frame, users, except_user);
  Outgoing outgoing;
  outgoing.droppable = true;
  outgoing.notice.set_ephemeral_frame(frame->frame().SerializeAsString());
  for (uint64_t user : users) {
    if (user != except_user) outgoing.users.push_back(user);
  }
  std::sort(outgoing.users.begin(), outgoing.users.end());
  Enqueue(std::move(outgoing));
}

// --------------------------------------------------------- remote side ----

void RedisDeliveryBus::OnSubscribed() {
  absl::MutexLock lock(&mu_);
  subscribed_ = true;
}

std::vector<absl::AnyInvocable<void() &&>>
RedisDeliveryBus::MarkCutOffLocked() {
  if (connected_) spdlog::warn("Redis delivery bus: cut off from Redis");
  connected_ = false;
  needs_reconnect_work_ = true;
  std::vector<absl::AnyInvocable<void() &&>> waiters;
  for (auto& [user, route] : routes_) {
    route.written = false;
    route.needs_resync = true;
    for (auto& waiter : route.waiters) waiters.push_back(std::move(waiter));
    route.waiters.clear();
  }
  return waiters;
}

void RedisDeliveryBus::OnSubscriptionLost() {
  std::vector<absl::AnyInvocable<void() &&>> waiters;
  {
    absl::MutexLock lock(&mu_);
    subscribed_ = false;
    waiters = MarkCutOffLocked();
  }
  members_->Clear();
  for (auto& waiter : waiters) std::move(waiter)();
}

void RedisDeliveryBus::OnMessage(absl::string_view payload) {
  DeliveryBatch batch;
  if (!batch.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    spdlog::warn("Redis delivery bus: dropped a batch that does not parse");
    return;
  }
  if (batch.origin_node() == options_.node_id) return;  // our own broadcast
  for (DeliveryNotice& notice : *batch.mutable_notices()) {
    notices_received_.fetch_add(1);
    DeliverRemote(notice);
  }
}

void RedisDeliveryBus::DeliverRemote(DeliveryNotice& notice) {
  const std::vector<uint64_t> users(notice.user_ids().begin(),
                                    notice.user_ids().end());
  switch (notice.body_case()) {
    case DeliveryNotice::kEntry: {
      storage::Entry& entry = *notice.mutable_entry();
      const uint64_t conversation_id = entry.conversation_id();
      std::vector<uint64_t> added;
      if (entry.has_member_event()) {
        members_->Invalidate(conversation_id);
        if (AddsMembers(entry)) {
          added.assign(entry.member_event().user_ids().begin(),
                       entry.member_event().user_ids().end());
        }
      }
      router_->PublishEntry(std::move(entry), NoMembers(), users);
      if (!added.empty()) ScheduleAddedMemberChecks(conversation_id, added);
      return;
    }
    case DeliveryNotice::kPosition:
      for (uint64_t user : users) {
        for (const auto& session : router_->SessionsOf(user)) {
          session->OnLogPosition(notice.position().conversation_id(),
                                 notice.position().seq(), nullptr);
        }
      }
      return;
    case DeliveryNotice::kEphemeralFrame: {
      v1::ServerFrame frame;
      if (frame.ParseFromString(notice.ephemeral_frame())) {
        router_->PublishEphemeral(MakeFrame(std::move(frame)), users, 0);
      }
      return;
    }
    case DeliveryNotice::kMembersChanged:
      members_->Invalidate(notice.members_changed());
      return;
    case DeliveryNotice::kResync: {
      std::vector<uint64_t> local;
      {
        absl::MutexLock lock(&mu_);
        for (const auto& [user, route] : routes_) local.push_back(user);
      }
      spdlog::info(
          "Redis delivery bus: a node lost notices; resyncing {} "
          "user(s)",
          local.size());
      ResyncUsers(std::move(local));
      return;
    }
    case DeliveryNotice::BODY_NOT_SET:
      return;
  }
}

void RedisDeliveryBus::ScheduleAddedMemberChecks(
    uint64_t conversation_id, absl::Span<const uint64_t> added) {
  std::vector<uint64_t> local;
  for (uint64_t user : added) {
    if (!router_->SessionsOf(user).empty()) local.push_back(user);
  }
  if (local.empty()) return;
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  for (absl::Duration delay : options_.added_member_checks) {
    timers_->Schedule(absl::Now() + delay, [this, conversation_id, local] {
      // A refused task only skips a safety check.
      resync_pool_
          ->Submit([this, conversation_id, local]() mutable {
            CheckConversation(conversation_id, std::move(local));
          })
          .IgnoreError();
    });
  }
}

void RedisDeliveryBus::CheckConversation(uint64_t conversation_id,
                                         std::vector<uint64_t> users) {
  if (shutting_down_.load()) return;
  absl::StatusOr<storage::ConversationRecord> conversation =
      reader_->GetConversation(conversation_id);
  if (!conversation.ok()) return;
  for (uint64_t user : users) {
    for (const auto& session : router_->SessionsOf(user)) {
      session->OnLogPosition(conversation_id, conversation->last_seq, nullptr);
    }
  }
}

void RedisDeliveryBus::ResyncUsers(std::vector<uint64_t> users) {
  for (uint64_t user : users) {
    absl::Status submitted =
        resync_pool_->Submit([this, user] { ResyncUser(user); });
    if (!submitted.ok()) {
      for (const auto& session : router_->SessionsOf(user)) {
        session->Close(absl::UnavailableError(
            "server is busy catching up; reconnect and resume"));
      }
    }
  }
}

void RedisDeliveryBus::ResyncUser(uint64_t user_id) {
  if (shutting_down_.load()) return;
  std::vector<std::shared_ptr<StreamSession>> sessions =
      router_->SessionsOf(user_id);
  if (sessions.empty()) return;
  absl::Status status;
  for (int attempt = 0; attempt < kResyncAttempts; ++attempt) {
    if (attempt > 0) absl::SleepFor(absl::Milliseconds(200) * attempt);
    std::vector<storage::MembershipView> all;
    uint64_t after = 0;
    for (;;) {
      absl::StatusOr<std::vector<storage::MembershipView>> page =
          reader_->ListMemberships(user_id, after, kMembershipPage,
                                   /*include_left=*/true);
      if (!page.ok()) {
        status = page.status();
        break;
      }
      const size_t count = page->size();
      for (auto& view : *page) all.push_back(std::move(view));
      if (count < kMembershipPage) {
        status = absl::OkStatus();
        break;
      }
      after = all.back().conversation.id;
    }
    if (!status.ok()) continue;
    for (const storage::MembershipView& view : all) {
      for (const auto& session : sessions) {
        session->OnLogPosition(view.conversation.id, view.conversation.last_seq,
                               &view.member);
      }
    }
    user_resyncs_.fetch_add(1);
    return;
  }
  spdlog::warn(
      "Redis delivery bus: could not resync user {} ({}); closing "
      "their streams so they resume",
      user_id, status.ToString());
  for (const auto& session : sessions) {
    session->Close(absl::UnavailableError(
        "could not catch up after a routing outage; reconnect and resume"));
  }
}

// ----------------------------------------------------------- publisher ----

void RedisDeliveryBus::AppendRouteWrite(RedisConnection& redis,
                                        uint64_t user_id) {
  const std::string key = RouteKey(user_id);
  const int64_t expires = absl::ToUnixMillis(absl::Now() + options_.route_ttl);
  redis.Append({"HSET", key, options_.node_id, absl::StrCat(expires)});
  redis.Append({"PEXPIRE", key,
                absl::StrCat(absl::ToInt64Milliseconds(options_.route_ttl))});
}

void RedisDeliveryBus::RunPublisher() {
  RedisBackoff backoff(options_.min_backoff, options_.max_backoff);
  std::unique_ptr<RedisConnection> redis;
  absl::Time flush_deadline = absl::InfiniteFuture();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        if (flush_deadline == absl::InfiniteFuture()) {
          flush_deadline = absl::Now() + options_.flush_timeout;
        }
        if ((queue_.empty() && in_flight_.empty() && route_ops_.empty()) ||
            absl::Now() >= flush_deadline) {
          break;
        }
      }
    }
    if (redis == nullptr || redis->broken()) {
      if (redis != nullptr) {
        redis.reset();
        std::vector<absl::AnyInvocable<void() &&>> waiters;
        {
          absl::MutexLock lock(&mu_);
          waiters = MarkCutOffLocked();
        }
        members_->Clear();
        for (auto& waiter : waiters) std::move(waiter)();
      }
      absl::StatusOr<std::unique_ptr<RedisConnection>> connected =
          RedisConnection::Connect(options_.redis);
      if (!connected.ok()) {
        spdlog::warn("Redis delivery bus: {}", connected.status().ToString());
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff.Next());
        continue;
      }
      redis = *std::move(connected);
      redis->Append({"CLIENT", "SETNAME",
                     absl::StrCat("im-message-pub-", options_.node_id)});
      if (!redis->ReadReply().ok()) continue;
    }
    bool reconnect_work = false;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ ||
               (subscribed_ && (needs_reconnect_work_ || !route_ops_.empty() ||
                                !queue_.empty()));
      };
      if (in_flight_.empty() || !subscribed_) {
        absl::Duration wait = absl::Milliseconds(100);
        if (connected_) {
          wait = std::clamp(next_refresh_ - absl::Now(), absl::ZeroDuration(),
                            wait);
        }
        mu_.AwaitWithTimeout(absl::Condition(&has_work), wait);
      }
      if (!subscribed_) continue;
      reconnect_work = needs_reconnect_work_;
    }
    if (reconnect_work) {
      if (!Reconnected(*redis)) continue;
      backoff.Reset();
    }
    if (!WriteRouteOps(*redis)) continue;
    if (absl::Now() >= next_refresh_ && !RefreshRoutes(*redis)) continue;
    PublishInFlight(*redis);
  }
  // Stopping: nothing more goes out.
  absl::MutexLock lock(&mu_);
  connected_ = false;
}

bool RedisDeliveryBus::Reconnected(RedisConnection& redis) {
  members_->Clear();
  std::vector<std::pair<uint64_t, uint64_t>> users;  // (user, generation)
  std::vector<uint64_t> removed;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [user, route] : routes_) {
      users.emplace_back(user, route.generation);
    }
    // Every current route is written below; removals still go out, first.
    for (const RouteOp& op : route_ops_) {
      if (!op.add) removed.push_back(op.user_id);
    }
    route_ops_.clear();
  }
  for (uint64_t user : removed) {
    redis.Append({"HDEL", RouteKey(user), options_.node_id});
  }
  for (const auto& [user, generation] : users) AppendRouteWrite(redis, user);
  const size_t replies = removed.size() + 2 * users.size();
  for (size_t i = 0; i < replies; ++i) {
    if (!redis.ReadReply().ok()) return false;
  }
  ReaddressPending();

  std::vector<absl::AnyInvocable<void() &&>> waiters;
  std::vector<uint64_t> to_resync;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [user, generation] : users) {
      auto it = routes_.find(user);
      if (it == routes_.end() || it->second.generation != generation) continue;
      Route& route = it->second;
      route.written = true;
      for (auto& waiter : route.waiters) waiters.push_back(std::move(waiter));
      route.waiters.clear();
      if (route.needs_resync) to_resync.push_back(user);
      route.needs_resync = false;
    }
    if (dropped_since_connected_) {
      Outgoing resync;
      resync.broadcast = true;
      resync.notice.set_resync(true);
      queue_.push_front(std::move(resync));
      dropped_since_connected_ = false;
    }
    needs_reconnect_work_ = false;
    connected_ = true;
  }
  reconnects_.fetch_add(1);
  spdlog::info(
      "Redis delivery bus: connected; {} route(s) written, {} user(s) to "
      "resync from the log",
      users.size(), to_resync.size());
  next_refresh_ = absl::Now() + options_.route_ttl / 3;
  for (auto& waiter : waiters) std::move(waiter)();
  ResyncUsers(std::move(to_resync));
  return true;
}

void RedisDeliveryBus::ReaddressPending() {
  absl::flat_hash_set<uint64_t> conversations;
  auto collect = [&conversations](const std::deque<Outgoing>& notices) {
    for (const Outgoing& outgoing : notices) {
      if (outgoing.notice.has_entry()) {
        conversations.insert(outgoing.notice.entry().conversation_id());
      } else if (outgoing.notice.has_position()) {
        conversations.insert(outgoing.notice.position().conversation_id());
      }
    }
  };
  collect(in_flight_);
  {
    absl::MutexLock lock(&mu_);
    collect(queue_);
  }
  absl::flat_hash_map<uint64_t, MembersPtr> fresh;
  for (uint64_t id : conversations) {
    absl::StatusOr<MembersPtr> members = members_->GetBlocking(id);
    if (members.ok()) fresh[id] = *std::move(members);
  }
  auto readdress = [&fresh](std::deque<Outgoing>& notices) {
    for (Outgoing& outgoing : notices) {
      uint64_t id = 0;
      if (outgoing.notice.has_entry()) {
        id = outgoing.notice.entry().conversation_id();
      } else if (outgoing.notice.has_position()) {
        id = outgoing.notice.position().conversation_id();
      }
      auto it = fresh.find(id);
      if (it != fresh.end()) MergeInto(outgoing.users, it->second->member_ids);
    }
  };
  readdress(in_flight_);
  absl::MutexLock lock(&mu_);
  readdress(queue_);
}

bool RedisDeliveryBus::WriteRouteOps(RedisConnection& redis) {
  std::deque<RouteOp> ops;
  {
    absl::MutexLock lock(&mu_);
    ops.swap(route_ops_);
  }
  if (ops.empty()) return true;
  size_t replies = 0;
  for (const RouteOp& op : ops) {
    if (op.add) {
      AppendRouteWrite(redis, op.user_id);
      replies += 2;
    } else {
      redis.Append({"HDEL", RouteKey(op.user_id), options_.node_id});
      ++replies;
    }
  }
  for (size_t i = 0; i < replies; ++i) {
    // Lost ops are covered: a broken connection rewrites every route.
    if (!redis.ReadReply().ok()) return false;
  }
  std::vector<absl::AnyInvocable<void() &&>> waiters;
  std::vector<uint64_t> to_resync;
  {
    absl::MutexLock lock(&mu_);
    for (const RouteOp& op : ops) {
      if (!op.add) continue;
      auto it = routes_.find(op.user_id);
      if (it == routes_.end() || it->second.generation != op.generation) {
        continue;
      }
      Route& route = it->second;
      route.written = true;
      for (auto& waiter : route.waiters) waiters.push_back(std::move(waiter));
      route.waiters.clear();
      if (route.needs_resync) to_resync.push_back(op.user_id);
      route.needs_resync = false;
    }
  }
  for (auto& waiter : waiters) std::move(waiter)();
  ResyncUsers(std::move(to_resync));
  return true;
}

bool RedisDeliveryBus::RefreshRoutes(RedisConnection& redis) {
  std::vector<uint64_t> users;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [user, route] : routes_) {
      if (route.written) users.push_back(user);
    }
  }
  for (uint64_t user : users) AppendRouteWrite(redis, user);
  for (size_t i = 0; i < 2 * users.size(); ++i) {
    if (!redis.ReadReply().ok()) return false;
  }
  next_refresh_ = absl::Now() + options_.route_ttl / 3;
  return true;
}

bool RedisDeliveryBus::PublishInFlight(RedisConnection& redis) {
  {
    absl::MutexLock lock(&mu_);
    while (in_flight_.size() < options_.max_notices_per_round &&
           !queue_.empty()) {
      in_flight_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    in_flight_count_.store(in_flight_.size());
  }
  if (in_flight_.empty()) return true;

  // Where each recipient has sessions, from the route hashes.
  std::vector<uint64_t> users;
  for (const Outgoing& outgoing : in_flight_) {
    if (!outgoing.broadcast) {
      users.insert(users.end(), outgoing.users.begin(), outgoing.users.end());
    }
  }
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  for (uint64_t user : users) redis.Append({"HGETALL", RouteKey(user)});
  absl::flat_hash_map<uint64_t, std::vector<std::string>> nodes_of;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (uint64_t user : users) {
    absl::StatusOr<RedisReply> reply = redis.ReadReply();
    if (!reply.ok()) return false;
    const auto& fields = reply->elements;
    for (size_t i = 0; i + 1 < fields.size(); i += 2) {
      int64_t expires = 0;
      if (fields[i].str == options_.node_id ||
          !absl::SimpleAtoi(fields[i + 1].str, &expires) || expires <= now_ms) {
        continue;
      }
      nodes_of[user].push_back(fields[i].str);
    }
  }

  // One list of batches per channel, notices in queue order.
  std::map<std::string, std::vector<DeliveryBatch>> batches;
  size_t sent = 0;
  auto add = [&](const std::string& channel, DeliveryNotice notice) {
    std::vector<DeliveryBatch>& list = batches[channel];
    if (list.empty() || list.back().ByteSizeLong() + notice.ByteSizeLong() >
                            options_.max_batch_bytes) {
      list.emplace_back();
      list.back().set_origin_node(options_.node_id);
    }
    *list.back().add_notices() = std::move(notice);
    ++sent;
  };
  for (const Outgoing& outgoing : in_flight_) {
    if (outgoing.broadcast) {
      add(SharedChannel(), outgoing.notice);
      continue;
    }
    std::map<std::string, std::vector<uint64_t>> by_node;
    for (uint64_t user : outgoing.users) {
      auto it = nodes_of.find(user);
      if (it == nodes_of.end()) continue;
      for (const std::string& node : it->second) by_node[node].push_back(user);
    }
    for (auto& [node, node_users] : by_node) {
      DeliveryNotice notice = outgoing.notice;
      notice.mutable_user_ids()->Assign(node_users.begin(), node_users.end());
      add(NodeChannel(node), std::move(notice));
    }
  }
  size_t publishes = 0;
  for (const auto& [channel, list] : batches) {
    for (const DeliveryBatch& batch : list) {
      redis.Append({"PUBLISH", channel, batch.SerializeAsString()});
      ++publishes;
    }
  }
  for (size_t i = 0; i < publishes; ++i) {
    if (!redis.ReadReply().ok()) return false;
  }
  notices_sent_.fetch_add(sent);
  batches_sent_.fetch_add(publishes);
  in_flight_.clear();
  in_flight_count_.store(0);
  return true;
}

}  // namespace im::message
