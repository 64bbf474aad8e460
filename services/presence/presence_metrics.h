#ifndef IM_SERVICES_PRESENCE_PRESENCE_METRICS_H_
#define IM_SERVICES_PRESENCE_PRESENCE_METRICS_H_

#include <memory>

#include "observability/sampled_metrics.h"
#include "services/presence/presence_service.h"

namespace im::presence {

// The presence service's metrics (README.md, Metrics), read from
// service.stats() at every scrape, so the service's paths carry no metrics
// code:
//   im_presence_leases                        gauge, live device leases
//   im_presence_users_online                  gauge
//   im_presence_nodes                         gauge, message nodes holding
//                                             leases
//   im_presence_subscriptions                 gauge, open Subscribe streams
//   im_presence_lease_expiries_total          leases lost with a silent node
//   im_presence_updates_sent_total            presences sent to subscribers
//   im_presence_update_batches_total          batches sent to subscribers
//   im_presence_last_seen_writes_total        last_seen rows written
//   im_presence_last_seen_write_failures_total
// For ServerMetrics::AddCollectable; `service` must stay alive while it is
// served (the service host stops serving before destroying the service).
std::shared_ptr<observability::SampledMetrics> PresenceMetrics(
    const PresenceServiceImpl& service);

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_PRESENCE_METRICS_H_
