#ifndef IM_SERVICES_PRESENCE_PRESENCE_LEASE_TABLE_H_
#define IM_SERVICES_PRESENCE_PRESENCE_LEASE_TABLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "im/auth/v1/auth.pb.h"

namespace im::presence {

// What a message-service node reports when a device stream opens.
struct LeaseSpec {
  std::string node_id;
  uint64_t user_id = 0;
  uint64_t session_id = 0;
  auth::v1::DeviceKind device_kind = auth::v1::DEVICE_KIND_UNSPECIFIED;
  std::string device_name;
};

// One device as others see it.
struct DeviceView {
  uint64_t session_id = 0;
  auth::v1::DeviceKind kind = auth::v1::DEVICE_KIND_UNSPECIFIED;
  std::string name;
  absl::Time online_since;
};

// A user's presence as others see it (visibility is applied elsewhere).
struct UserPresence {
  uint64_t user_id = 0;
  bool online = false;
  std::vector<DeviceView> devices;      // ascending session id; online only
  std::optional<absl::Time> last_seen;  // offline only; unset if never seen
  std::string status_text;
};

// A user's persisted fields, as read from the UserStore.
struct StoredUser {
  uint64_t user_id = 0;
  std::optional<absl::Time> last_seen;
  std::string status_text;
};

// The in-memory truth of who is online: device leases grouped by node,
// devices per user, grace periods, last_seen bookkeeping and status text.
//
// Leases: a node holds at most one lease per session (OpenLease for a
// session the node already holds returns the same lease), so a node can
// re-open everything it holds at any time. Heartbeat renews all of a node's
// leases; a node silent for lease_ttl loses them all and those devices are
// gone at once (no grace: the node has been silent for a whole TTL).
//
// Grace: a closed lease leaves its device listed (still online) for
// grace_period. If the same session opens again meanwhile, nothing changed
// (online_since is kept); otherwise the device is dropped then, and with
// its last device the user goes offline with last_seen = close time.
//
// Resync: when a heartbeat's lease_count differs from what the table holds
// for the node, the table answers resync and marks the node's leases
// unconfirmed; the node re-opens every lease it holds (which confirms it),
// and the first heartbeat whose count equals the confirmed leases closes
// the unconfirmed rest. Nothing a node still holds ever goes offline.
//
// Time comes in as `now` on every call (tests drive it). Thread-safe; the
// change listener runs outside the lock, on the calling thread.
class PresenceLeaseTable {
 public:
  struct Options {
    absl::Duration lease_ttl = absl::Seconds(30);
    absl::Duration grace_period = absl::Seconds(2);
    // A user's last_seen is written at most once per interval (> 0);
    // online users get it refreshed once per interval so a crash loses at
    // most that much.
    absl::Duration last_seen_interval = absl::Seconds(60);
    // Offline users untouched this long are dropped from memory (their
    // last_seen is in the database by then and is read back on demand).
    absl::Duration idle_retention = absl::Minutes(10);
  };

  // Receives the users whose visible presence (state, devices, last_seen,
  // status text) changed, outside the table's lock.
  using ChangeListener = std::function<void(absl::Span<const uint64_t>)>;

  PresenceLeaseTable(const Options& options, ChangeListener listener);

  PresenceLeaseTable(const PresenceLeaseTable&) = delete;
  PresenceLeaseTable& operator=(const PresenceLeaseTable&) = delete;

  const Options& options() const { return options_; }

  // Opens (or, for a session the node already holds, confirms) a lease and
  // renews the node. Returns the lease id.
  uint64_t OpenLease(const LeaseSpec& spec, absl::Time now);
  // Closes a lease of `node_id`; unknown leases and leases of other nodes
  // are ignored. Renews the node.
  void CloseLease(absl::string_view node_id, uint64_t lease_id,
                  absl::Time now);

  struct HeartbeatResult {
    uint32_t renewed = 0;  // leases the node holds after the heartbeat
    bool resync = false;   // the node must re-open all its leases
  };
  HeartbeatResult Heartbeat(absl::string_view node_id, uint32_t lease_count,
                            absl::Time now);

  // Expires silent nodes, ends grace periods that ran out, forgets idle
  // entries. Call often (the service ticks every few tens of ms).
  void Advance(absl::Time now);

  // Current presence of each user, in order (unknown users: offline,
  // never seen).
  std::vector<UserPresence> Get(absl::Span<const uint64_t> users) const;

  // Users among `users` whose stored fields were never merged in.
  std::vector<uint64_t> UsersWithoutStoredState(
      absl::Span<const uint64_t> users) const;
  // Users that appeared through a lease without stored fields, to be loaded
  // in the background (each is handed out once), at most `max`.
  std::vector<uint64_t> TakeUsersToLoad(size_t max);
  // Merges what the store holds for `requested` (`found` may lack unknown
  // ids). Memory wins where it is newer: a later last_seen, a status set
  // through SetStatusText.
  void MergeStoredState(absl::Span<const uint64_t> requested,
                        absl::Span<const StoredUser> found, absl::Time now);

  // Sets the status text (already persisted by the caller).
  void SetStatusText(uint64_t user_id, const std::string& text,
                     absl::Time now);

  // last_seen values due for the database: offline users whose last_seen
  // changed and online users due for a refresh, each at most once per
  // last_seen_interval (flush_all: everything pending and every online
  // user, for shutdown). At most `max` entries; call again with the same
  // `now` until fewer come back.
  std::vector<std::pair<uint64_t, absl::Time>> TakeLastSeenDue(
      absl::Time now, bool flush_all, size_t max);
  // The write of these failed: they are due again at once.
  void RestoreLastSeenDue(
      absl::Span<const std::pair<uint64_t, absl::Time>> failed);

  // Replication: with several presence nodes (RedisLeaseReplication) each
  // table holds every message node's leases, fed with the changes the
  // presence node a message node talks to saw.

  // The session of `node_id`'s lease `lease_id`; nullopt if unknown.
  std::optional<uint64_t> LeaseSession(absl::string_view node_id,
                                       uint64_t lease_id) const;
  // Closes `node_id`'s lease for `session_id` (as CloseLease), if any.
  void CloseSessionLease(absl::string_view node_id, uint64_t session_id,
                         absl::Time now);
  // Renews the node as a heartbeat does, without checking its leases.
  void RenewNode(absl::string_view node_id, absl::Time now);
  // The node's lease count and a digest of its (session, user) pairs:
  // equal on tables holding the same leases for it.
  struct NodeSummary {
    uint32_t lease_count = 0;
    uint64_t digest = 0;
  };
  NodeSummary SummarizeNode(absl::string_view node_id) const;
  // The node's leases, ascending by session.
  std::vector<LeaseSpec> NodeLeases(absl::string_view node_id) const;
  // Makes the node hold exactly `leases`: the others close (as CloseLease),
  // missing ones open; renews the node.
  void ReplaceNodeLeases(absl::string_view node_id,
                         absl::Span<const LeaseSpec> leases, absl::Time now);

  struct Counts {
    size_t nodes = 0;
    size_t leases = 0;
    size_t users_online = 0;
    size_t entries = 0;
    // Leases dropped because their node went silent, since creation.
    uint64_t leases_expired = 0;
  };
  Counts counts() const;

 private:
  struct Device {
    auth::v1::DeviceKind kind = auth::v1::DEVICE_KIND_UNSPECIFIED;
    std::string name;
    absl::Time online_since;
    int live_leases = 0;
    absl::Time closed_at;  // when live_leases dropped to 0
  };
  struct User {
    std::map<uint64_t, Device> devices;  // by session id
    absl::Time online_at;                // when devices became non-empty
    std::optional<absl::Time> last_seen;
    std::string status_text;
    bool stored_loaded = false;  // stored fields merged (or known absent)
    bool status_known = false;   // status_text is authoritative
    bool load_queued = false;
    // last_seen persistence.
    bool last_seen_dirty = false;
    std::optional<absl::Time> last_written_at;
    absl::Time changed_at;  // for idle eviction
  };
  struct Lease {
    std::string node_id;
    uint64_t user_id = 0;
    uint64_t session_id = 0;
    uint64_t epoch = 0;
    absl::Time opened_at;
  };
  struct Node {
    absl::flat_hash_map<uint64_t, uint64_t> lease_by_session;
    absl::Time expires_at;
    absl::Time renewed_at;
    bool resyncing = false;
    uint64_t epoch = 0;
  };
  struct GraceDeadline {
    absl::Time at;
    uint64_t user_id;
    uint64_t session_id;
    bool operator>(const GraceDeadline& o) const { return at > o.at; }
  };
  using Changes = std::vector<uint64_t>;

  Node& RenewNodeLocked(absl::string_view node_id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  User& UserLocked(uint64_t user_id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops a lease from the node and its device; `graceful` keeps the device
  // listed for the grace period, otherwise it goes at once with last_seen
  // `gone_at`.
  void ReleaseLeaseLocked(uint64_t lease_id, bool graceful, absl::Time gone_at,
                          absl::Time now, Changes* changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveDeviceLocked(uint64_t user_id, User& user, uint64_t session_id,
                          absl::Time gone_at, absl::Time now, Changes* changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  UserPresence ViewLocked(uint64_t user_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify(const Changes& changes);

  const Options options_;
  const ChangeListener listener_;

  mutable absl::Mutex mu_;
  uint64_t next_lease_id_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Lease> leases_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, User> users_ ABSL_GUARDED_BY(mu_);
  size_t users_online_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t leases_expired_ ABSL_GUARDED_BY(mu_) = 0;
  std::priority_queue<GraceDeadline, std::vector<GraceDeadline>,
                      std::greater<GraceDeadline>>
      grace_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> to_load_ ABSL_GUARDED_BY(mu_);
  absl::Time last_eviction_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_PRESENCE_LEASE_TABLE_H_
