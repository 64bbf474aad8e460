#include "services/presence/redis_replication_metrics.h"

namespace im::presence {

std::shared_ptr<observability::SampledMetrics> RedisReplicationMetrics(
    const RedisLeaseReplication& replication) {
  auto metrics = std::make_shared<observability::SampledMetrics>();
  const RedisLeaseReplication* const r = &replication;
  metrics->AddGauge(
      "im_redis_connected",
      "1 while this presence node is linked to the others through Redis.",
      [r] { return r->connected() ? 1.0 : 0.0; });
  metrics->AddGauge("im_redis_pending_events",
                    "Lease events not yet published.",
                    [r] { return r->stats().pending; });
  metrics->AddCounter("im_redis_events_sent_total", "Lease events published.",
                      [r] { return r->stats().events_sent; });
  metrics->AddCounter("im_redis_events_received_total",
                      "Lease events received from other presence nodes.",
                      [r] { return r->stats().events_received; });
  metrics->AddCounter("im_redis_events_dropped_total",
                      "Lease events dropped because the queue was full while "
                      "Redis was unreachable.",
                      [r] { return r->stats().events_dropped; });
  metrics->AddCounter("im_redis_sync_requests_total",
                      "Times this node's copy of a message node's leases "
                      "differed from its owner's.",
                      [r] { return r->stats().sync_requests; });
  return metrics;
}

}  // namespace im::presence
