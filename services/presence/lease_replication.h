#ifndef IM_SERVICES_PRESENCE_LEASE_REPLICATION_H_
#define IM_SERVICES_PRESENCE_LEASE_REPLICATION_H_

#include <cstdint>
#include <string>

#include "services/presence/presence_lease_table.h"

namespace im::presence {

// Shares a presence node's lease changes with the other presence nodes and
// applies theirs to its table, so that every node answers Query and
// Subscribe for every message node (RedisLeaseReplication). The service
// calls it after its table applied a change it served. Thread-safe.
class LeaseReplication {
 public:
  virtual ~LeaseReplication() = default;
  virtual void LeaseOpened(const LeaseSpec& spec) = 0;
  virtual void LeaseClosed(const std::string& node_id, uint64_t session_id) = 0;
  // A message node heartbeated here (it is alive; this is what it holds).
  virtual void NodeHeartbeat(const std::string& node_id) = 0;
  virtual void StatusChanged(uint64_t user_id, const std::string& text) = 0;
  // Stops applying and sending; idempotent.
  virtual void Stop() = 0;
};

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_LEASE_REPLICATION_H_
