#include "services/message/redis_bus_metrics.h"

namespace im::message {

std::shared_ptr<observability::SampledMetrics> RedisBusMetrics(
    const RedisDeliveryBus& bus) {
  auto metrics = std::make_shared<observability::SampledMetrics>();
  const RedisDeliveryBus* const b = &bus;
  metrics->AddGauge("im_redis_connected",
                    "1 while this node is linked to the others through Redis.",
                    [b] { return b->connected() ? 1.0 : 0.0; });
  metrics->AddGauge("im_redis_pending_notices",
                    "Notices for other nodes not yet acknowledged by Redis.",
                    [b] { return b->stats().pending; });
  metrics->AddCounter("im_redis_notices_sent_total",
                      "Notices published to other nodes.",
                      [b] { return b->stats().notices_sent; });
  metrics->AddCounter("im_redis_notices_received_total",
                      "Notices received from other nodes.",
                      [b] { return b->stats().notices_received; });
  metrics->AddCounter("im_redis_notices_dropped_total",
                      "Notices dropped because the queue was full while "
                      "Redis was unreachable.",
                      [b] { return b->stats().notices_dropped; });
  metrics->AddCounter("im_redis_user_resyncs_total",
                      "Users whose sessions re-read their conversations from "
                      "the log after a Redis outage.",
                      [b] { return b->stats().user_resyncs; });
  metrics->AddCounter("im_redis_reconnects_total",
                      "Times the link to Redis came up.",
                      [b] { return b->stats().reconnects; });
  return metrics;
}

}  // namespace im::message
