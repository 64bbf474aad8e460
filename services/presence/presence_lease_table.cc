#include "services/presence/presence_lease_table.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"

namespace im::presence {

PresenceLeaseTable::PresenceLeaseTable(const Options& options,
                                       ChangeListener listener)
    : options_(options), listener_(std::move(listener)) {
  // Lease ids start at a random point so ids handed out before a restart
  // do not name new leases afterwards.
  absl::BitGen gen;
  next_lease_id_ = absl::Uniform<uint64_t>(gen, 1, uint64_t{1} << 62);
}

PresenceLeaseTable::Node& PresenceLeaseTable::RenewNodeLocked(
    absl::string_view node_id, absl::Time now) {
  Node& node = nodes_[node_id];
  node.renewed_at = now;
  node.expires_at = now + options_.lease_ttl;
  return node;
}

PresenceLeaseTable::User& PresenceLeaseTable::UserLocked(uint64_t user_id,
                                                         absl::Time now) {
  User& user = users_[user_id];
  user.changed_at = now;
  if (!user.stored_loaded && !user.load_queued) {
    user.load_queued = true;
    to_load_.push_back(user_id);
  }
  return user;
}

uint64_t PresenceLeaseTable::OpenLease(const LeaseSpec& spec, absl::Time now) {
  Changes changes;
  uint64_t lease_id = 0;
  {
    absl::MutexLock lock(&mu_);
    Node& node = RenewNodeLocked(spec.node_id, now);
    if (auto it = node.lease_by_session.find(spec.session_id);
        it != node.lease_by_session.end()) {
      Lease& held = leases_.at(it->second);
      if (held.user_id == spec.user_id) {
        // The node re-opens what it holds (resync): confirm it.
        held.epoch = node.epoch;
        lease_id = it->second;
      } else {
        ReleaseLeaseLocked(it->second, /*graceful=*/true, now, now, &changes);
      }
    }
    User& user = UserLocked(spec.user_id, now);
    const bool was_online = !user.devices.empty();
    auto [device_it, inserted] = user.devices.try_emplace(spec.session_id);
    Device& device = device_it->second;
    if (inserted) {
      device.online_since = now;
      changes.push_back(spec.user_id);
    }
    if (device.kind != spec.device_kind || device.name != spec.device_name) {
      device.kind = spec.device_kind;
      device.name = spec.device_name;
      if (!inserted) changes.push_back(spec.user_id);
    }
    if (!was_online) {
      user.online_at = now;
      ++users_online_;
    }
    if (lease_id == 0) {
      lease_id = next_lease_id_++;
      Lease& lease = leases_[lease_id];
      lease.node_id = spec.node_id;
      lease.user_id = spec.user_id;
      lease.session_id = spec.session_id;
      lease.epoch = node.epoch;
      lease.opened_at = now;
      node.lease_by_session[spec.session_id] = lease_id;
      ++device.live_leases;
    }
  }
  Notify(changes);
  return lease_id;
}

void PresenceLeaseTable::CloseLease(absl::string_view node_id,
                                    uint64_t lease_id, absl::Time now) {
  Changes changes;
  {
    absl::MutexLock lock(&mu_);
    RenewNodeLocked(node_id, now);
    auto it = leases_.find(lease_id);
    if (it == leases_.end() || it->second.node_id != node_id) return;
    ReleaseLeaseLocked(lease_id, /*graceful=*/true, now, now, &changes);
  }
  Notify(changes);
}

PresenceLeaseTable::HeartbeatResult PresenceLeaseTable::Heartbeat(
    absl::string_view node_id, uint32_t lease_count, absl::Time now) {
  Changes changes;
  HeartbeatResult result;
  {
    absl::MutexLock lock(&mu_);
    Node& node = RenewNodeLocked(node_id, now);
    const size_t held = node.lease_by_session.size();
    if (held == lease_count) {
      node.resyncing = false;
      result.renewed = static_cast<uint32_t>(held);
    } else if (node.resyncing) {
      std::vector<uint64_t> unconfirmed;
      for (const auto& [session, id] : node.lease_by_session) {
        if (leases_.at(id).epoch != node.epoch) unconfirmed.push_back(id);
      }
      if (held - unconfirmed.size() == lease_count) {
        // Everything the node holds was re-opened; the rest is stale.
        for (uint64_t id : unconfirmed) {
          ReleaseLeaseLocked(id, /*graceful=*/true, now, now, &changes);
        }
        node.resyncing = false;
        result.renewed = lease_count;
      } else {
        result.renewed = static_cast<uint32_t>(held);
        result.resync = true;
      }
    } else {
      node.resyncing = true;
      ++node.epoch;
      result.renewed = static_cast<uint32_t>(held);
      result.resync = true;
    }
  }
  Notify(changes);
  return result;
}

void PresenceLeaseTable::ReleaseLeaseLocked(uint64_t lease_id, bool graceful,
                                            absl::Time gone_at, absl::Time now,
                                            Changes* changes) {
  auto lease_it = leases_.find(lease_id);
  if (lease_it == leases_.end()) return;
  const Lease lease = std::move(lease_it->second);
  leases_.erase(lease_it);
  if (auto node_it = nodes_.find(lease.node_id); node_it != nodes_.end()) {
    auto& by_session = node_it->second.lease_by_session;
    if (auto s = by_session.find(lease.session_id);
        s != by_session.end() && s->second == lease_id) {
      by_session.erase(s);
    }
  }
  auto user_it = users_.find(lease.user_id);
  if (user_it == users_.end()) return;
  User& user = user_it->second;
  auto device_it = user.devices.find(lease.session_id);
  if (device_it == user.devices.end()) return;
  Device& device = device_it->second;
  if (--device.live_leases > 0) return;
  if (graceful) {
    device.closed_at = now;
    grace_.push(GraceDeadline{now + options_.grace_period, lease.user_id,
                              lease.session_id});
  } else {
    RemoveDeviceLocked(lease.user_id, user, lease.session_id, gone_at, now,
                       changes);
  }
}

void PresenceLeaseTable::RemoveDeviceLocked(uint64_t user_id, User& user,
                                            uint64_t session_id,
                                            absl::Time gone_at, absl::Time now,
                                            Changes* changes) {
  user.devices.erase(session_id);
  user.changed_at = now;
  changes->push_back(user_id);
  if (!user.last_seen.has_value() || *user.last_seen < gone_at) {
    // Kept while online too: the latest moment any device was seen.
    user.last_seen = gone_at;
  }
  if (user.devices.empty()) {
    --users_online_;
    user.last_seen_dirty = true;
  }
}

void PresenceLeaseTable::Advance(absl::Time now) {
  Changes changes;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> dead;
    for (const auto& [name, node] : nodes_) {
      if (node.expires_at <= now) dead.push_back(name);
    }
    for (const std::string& name : dead) {
      const Node& node = nodes_.at(name);
      const absl::Time renewed_at = node.renewed_at;
      std::vector<uint64_t> ids;
      ids.reserve(node.lease_by_session.size());
      for (const auto& [session, id] : node.lease_by_session) {
        ids.push_back(id);
      }
      leases_expired_ += ids.size();
      for (uint64_t id : ids) {
        // Last heard of when the node last renewed (or the lease opened).
        const absl::Time gone_at = std::max(renewed_at, leases_.at(id).opened_at);
        ReleaseLeaseLocked(id, /*graceful=*/false, gone_at, now, &changes);
      }
      nodes_.erase(name);
    }

    while (!grace_.empty() && grace_.top().at <= now) {
      const GraceDeadline deadline = grace_.top();
      grace_.pop();
      auto user_it = users_.find(deadline.user_id);
      if (user_it == users_.end()) continue;
      User& user = user_it->second;
      auto device_it = user.devices.find(deadline.session_id);
      if (device_it == user.devices.end()) continue;
      const Device& device = device_it->second;
      // Stale deadline: the session came back (and maybe closed again).
      if (device.live_leases > 0 ||
          device.closed_at + options_.grace_period > now) {
        continue;
      }
      RemoveDeviceLocked(deadline.user_id, user, deadline.session_id,
                         device.closed_at, now, &changes);
    }

    if (now - last_eviction_ >= absl::Seconds(1)) {
      last_eviction_ = now;
      for (auto it = users_.begin(); it != users_.end();) {
        const User& user = it->second;
        // Everything in memory is in the database by now.
        if (user.devices.empty() && !user.last_seen_dirty &&
            user.changed_at + options_.idle_retention <= now) {
          users_.erase(it++);
        } else {
          ++it;
        }
      }
    }
  }
  Notify(changes);
}

UserPresence PresenceLeaseTable::ViewLocked(uint64_t user_id) const {
  UserPresence view;
  view.user_id = user_id;
  auto it = users_.find(user_id);
  if (it == users_.end()) return view;
  const User& user = it->second;
  view.online = !user.devices.empty();
  view.status_text = user.status_text;
  if (view.online) {
    view.devices.reserve(user.devices.size());
    for (const auto& [session, device] : user.devices) {
      view.devices.push_back(
          DeviceView{session, device.kind, device.name, device.online_since});
    }
  } else {
    view.last_seen = user.last_seen;
  }
  return view;
}

std::vector<UserPresence> PresenceLeaseTable::Get(
    absl::Span<const uint64_t> users) const {
  std::vector<UserPresence> out;
  out.reserve(users.size());
  absl::MutexLock lock(&mu_);
  for (uint64_t id : users) out.push_back(ViewLocked(id));
  return out;
}

std::vector<uint64_t> PresenceLeaseTable::UsersWithoutStoredState(
    absl::Span<const uint64_t> users) const {
  std::vector<uint64_t> missing;
  absl::MutexLock lock(&mu_);
  for (uint64_t id : users) {
    auto it = users_.find(id);
    if (it == users_.end() || !it->second.stored_loaded) missing.push_back(id);
  }
  return missing;
}

std::vector<uint64_t> PresenceLeaseTable::TakeUsersToLoad(size_t max) {
  std::vector<uint64_t> out;
  absl::MutexLock lock(&mu_);
  while (!to_load_.empty() && out.size() < max) {
    const uint64_t id = to_load_.back();
    to_load_.pop_back();
    auto it = users_.find(id);
    if (it == users_.end()) continue;
    // A failed load is retried at the user's next lease change.
    it->second.load_queued = false;
    if (!it->second.stored_loaded) out.push_back(id);
  }
  return out;
}

void PresenceLeaseTable::MergeStoredState(absl::Span<const uint64_t> requested,
                                          absl::Span<const StoredUser> found,
                                          absl::Time now) {
  Changes changes;
  {
    absl::flat_hash_map<uint64_t, const StoredUser*> by_id;
    for (const StoredUser& stored : found) by_id[stored.user_id] = &stored;
    absl::MutexLock lock(&mu_);
    for (uint64_t id : requested) {
      User& user = users_[id];
      user.changed_at = now;
      if (user.stored_loaded) continue;
      user.stored_loaded = true;
      auto it = by_id.find(id);
      if (it == by_id.end()) {
        user.status_known = true;
        continue;
      }
      const StoredUser& stored = *it->second;
      bool changed = false;
      if (stored.last_seen.has_value() &&
          (!user.last_seen.has_value() || *user.last_seen < *stored.last_seen)) {
        user.last_seen = stored.last_seen;
        changed = user.devices.empty();
      }
      if (!user.status_known) {
        user.status_known = true;
        if (user.status_text != stored.status_text) {
          user.status_text = stored.status_text;
          changed = true;
        }
      }
      if (changed) changes.push_back(id);
    }
  }
  Notify(changes);
}

void PresenceLeaseTable::SetStatusText(uint64_t user_id,
                                       const std::string& text,
                                       absl::Time now) {
  Changes changes;
  {
    absl::MutexLock lock(&mu_);
    User& user = UserLocked(user_id, now);
    user.status_known = true;
    if (user.status_text != text) {
      user.status_text = text;
      changes.push_back(user_id);
    }
  }
  Notify(changes);
}

std::vector<std::pair<uint64_t, absl::Time>>
PresenceLeaseTable::TakeLastSeenDue(absl::Time now, bool flush_all,
                                    size_t max) {
  std::vector<std::pair<uint64_t, absl::Time>> due;
  const absl::Duration interval = options_.last_seen_interval;
  absl::MutexLock lock(&mu_);
  for (auto& [id, user] : users_) {
    if (due.size() >= max) break;
    if (user.last_written_at.has_value()) {
      // flush_all: everything not yet written at this `now`.
      const absl::Duration since_write = now - *user.last_written_at;
      if (flush_all ? since_write <= absl::ZeroDuration()
                    : since_write < interval) {
        continue;
      }
    }
    absl::Time value;
    if (!user.devices.empty()) {
      absl::Time since = user.online_at;
      if (user.last_written_at.has_value()) {
        since = std::max(since, *user.last_written_at);
      }
      if (!flush_all && !user.last_seen_dirty && now - since < interval) {
        continue;
      }
      // Online: seen now, unless every device is in its grace period.
      bool live = false;
      value = absl::InfinitePast();
      for (const auto& [session, device] : user.devices) {
        if (device.live_leases > 0) live = true;
        value = std::max(value, device.closed_at);
      }
      if (live) value = now;
    } else {
      if (!user.last_seen_dirty || !user.last_seen.has_value()) continue;
      value = *user.last_seen;
    }
    due.emplace_back(id, value);
    user.last_written_at = now;
    user.last_seen_dirty = false;
  }
  return due;
}

void PresenceLeaseTable::RestoreLastSeenDue(
    absl::Span<const std::pair<uint64_t, absl::Time>> failed) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, time] : failed) {
    auto it = users_.find(id);
    if (it == users_.end()) continue;
    it->second.last_seen_dirty = true;
    it->second.last_written_at.reset();
  }
}

std::optional<uint64_t> PresenceLeaseTable::LeaseSession(
    absl::string_view node_id, uint64_t lease_id) const {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.node_id != node_id) {
    return std::nullopt;
  }
  return it->second.session_id;
}

void PresenceLeaseTable::CloseSessionLease(absl::string_view node_id,
                                           uint64_t session_id,
                                           absl::Time now) {
  Changes changes;
  {
    absl::MutexLock lock(&mu_);
    Node& node = RenewNodeLocked(node_id, now);
    auto it = node.lease_by_session.find(session_id);
    if (it == node.lease_by_session.end()) return;
    ReleaseLeaseLocked(it->second, /*graceful=*/true, now, now, &changes);
  }
  Notify(changes);
}

void PresenceLeaseTable::RenewNode(absl::string_view node_id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  RenewNodeLocked(node_id, now);
}

PresenceLeaseTable::NodeSummary PresenceLeaseTable::SummarizeNode(
    absl::string_view node_id) const {
  NodeSummary summary;
  absl::MutexLock lock(&mu_);
  auto node = nodes_.find(node_id);
  if (node == nodes_.end()) return summary;
  for (const auto& [session, lease_id] : node->second.lease_by_session) {
    // A fixed mix (not absl::Hash, which differs between processes).
    uint64_t x = session * 0x9e3779b97f4a7c15ULL ^ leases_.at(lease_id).user_id;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    summary.digest ^= x ^ (x >> 31);
    ++summary.lease_count;
  }
  return summary;
}

std::vector<LeaseSpec> PresenceLeaseTable::NodeLeases(
    absl::string_view node_id) const {
  std::vector<LeaseSpec> specs;
  absl::MutexLock lock(&mu_);
  auto node = nodes_.find(node_id);
  if (node == nodes_.end()) return specs;
  for (const auto& [session, lease_id] : node->second.lease_by_session) {
    const Lease& lease = leases_.at(lease_id);
    LeaseSpec spec;
    spec.node_id = std::string(node_id);
    spec.user_id = lease.user_id;
    spec.session_id = session;
    if (auto user = users_.find(lease.user_id); user != users_.end()) {
      if (auto device = user->second.devices.find(session);
          device != user->second.devices.end()) {
        spec.device_kind = device->second.kind;
        spec.device_name = device->second.name;
      }
    }
    specs.push_back(std::move(spec));
  }
  std::sort(specs.begin(), specs.end(),
            [](const LeaseSpec& a, const LeaseSpec& b) {
              return a.session_id < b.session_id;
            });
  return specs;
}

void PresenceLeaseTable::ReplaceNodeLeases(absl::string_view node_id,
                                           absl::Span<const LeaseSpec> leases,
                                           absl::Time now) {
  Changes changes;
  {
    absl::flat_hash_map<uint64_t, uint64_t> wanted;  // session -> user
    for (const LeaseSpec& spec : leases) {
      wanted[spec.session_id] = spec.user_id;
    }
    absl::MutexLock lock(&mu_);
    Node& node = RenewNodeLocked(node_id, now);
    std::vector<uint64_t> stale;
    for (const auto& [session, lease_id] : node.lease_by_session) {
      auto it = wanted.find(session);
      if (it == wanted.end() || it->second != leases_.at(lease_id).user_id) {
        stale.push_back(lease_id);
      }
    }
    for (uint64_t lease_id : stale) {
      ReleaseLeaseLocked(lease_id, /*graceful=*/true, now, now, &changes);
    }
  }
  Notify(changes);
  for (const LeaseSpec& spec : leases) {
    LeaseSpec held = spec;
    held.node_id = std::string(node_id);
    OpenLease(held, now);
  }
}

PresenceLeaseTable::Counts PresenceLeaseTable::counts() const {
  absl::MutexLock lock(&mu_);
  return Counts{nodes_.size(), leases_.size(), users_online_, users_.size(),
                leases_expired_};
}

void PresenceLeaseTable::Notify(const Changes& changes) {
  if (changes.empty() || !listener_) return;
  if (changes.size() == 1) {
    listener_(changes);
    return;
  }
  Changes unique = changes;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  listener_(unique);
}

}  // namespace im::presence
