#ifndef IM_SERVICES_MESSAGE_MESSAGE_NODE_METRICS_H_
#define IM_SERVICES_MESSAGE_MESSAGE_NODE_METRICS_H_

#include <memory>

#include "observability/sampled_metrics.h"
#include "services/message/message_service.h"

namespace im::message {

// The message node's metrics read from its state at every scrape
// (README.md, Metrics; what the pipeline records is in message_metrics.h):
//   im_message_live_streams          gauge, open Chat and Subscribe streams
//   im_message_devices_online        gauge, devices (auth sessions) with a
//                                    stream or poll on this node
//   im_message_outbound_queue_depth  gauge, frames waiting in this node's
//                                    streams' outbound queues (not the ones
//                                    being written)
//   im_message_accepted_total        sends committed as new entries
//   im_message_duplicates_total      sends answered with the entry stored
//                                    first (retries)
//   im_message_send_failures_total   sends that failed
// For ServerMetrics::AddCollectable; `service` must stay alive while it is
// served (the service host stops serving before destroying the service).
std::shared_ptr<observability::SampledMetrics> MessageNodeMetrics(
    MessageServiceImpl& service);

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_MESSAGE_NODE_METRICS_H_
