#ifndef IM_SERVICES_MESSAGE_REDIS_BUS_METRICS_H_
#define IM_SERVICES_MESSAGE_REDIS_BUS_METRICS_H_

#include <memory>

#include "observability/sampled_metrics.h"
#include "services/message/redis_delivery_bus.h"

namespace im::message {

// A message node's link to the other nodes (--redis), read from
// bus.stats() at every scrape:
//   im_redis_connected                 gauge, 1 while linked through Redis
//   im_redis_pending_notices           gauge, notices not yet acknowledged
//   im_redis_notices_sent_total        notices published to other nodes
//   im_redis_notices_received_total    notices from other nodes
//   im_redis_notices_dropped_total     notices dropped, queue full
//   im_redis_user_resyncs_total        users whose sessions re-read the log
//   im_redis_reconnects_total          times the link came (back) up
// For ServerMetrics::AddCollectable; `bus` must stay alive while served.
std::shared_ptr<observability::SampledMetrics> RedisBusMetrics(
    const RedisDeliveryBus& bus);

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_REDIS_BUS_METRICS_H_
