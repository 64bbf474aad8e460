#ifndef IM_SERVICES_PRESENCE_REDIS_REPLICATION_METRICS_H_
#define IM_SERVICES_PRESENCE_REDIS_REPLICATION_METRICS_H_

#include <memory>

#include "observability/sampled_metrics.h"
#include "services/presence/redis_lease_replication.h"

namespace im::presence {

// A presence node's link to the other presence nodes (--redis), read from
// the replication at every scrape:
//   im_redis_connected                gauge, 1 while linked through Redis
//   im_redis_pending_events           gauge, lease events not yet published
//   im_redis_events_sent_total        lease events published
//   im_redis_events_received_total    lease events from other nodes
//   im_redis_events_dropped_total     events dropped, queue full
//   im_redis_sync_requests_total      times a replica differed from an owner
// For ServerMetrics::AddCollectable; `replication` must stay alive while
// served.
std::shared_ptr<observability::SampledMetrics> RedisReplicationMetrics(
    const RedisLeaseReplication& replication);

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_REDIS_REPLICATION_METRICS_H_
