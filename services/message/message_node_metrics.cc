#include "services/message/message_node_metrics.h"

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "services/message/stream_session.h"

namespace im::message {

std::shared_ptr<observability::SampledMetrics> MessageNodeMetrics(
    MessageServiceImpl& service) {
  auto metrics = std::make_shared<observability::SampledMetrics>();
  MessageServiceImpl* const s = &service;
  const MessageServiceStats* const stats = &service.stats();
  metrics->AddGauge("im_message_live_streams",
                    "Open Chat and Subscribe streams on this node.", [stats] {
                      return static_cast<double>(stats->streams_opened.load() -
                                                 stats->streams_closed.load());
                    });
  metrics->AddGauge(
      "im_message_devices_online",
      "Devices (auth sessions) with a stream or poll on this node.", [s] {
        absl::flat_hash_set<uint64_t> devices;
        for (const auto& session : s->router().AllSessions()) {
          devices.insert(session->identity().auth_session_id);
        }
        return static_cast<double>(devices.size());
      });
  metrics->AddGauge(
      "im_message_outbound_queue_depth",
      "Frames waiting in this node's streams' outbound queues.",
      [s] {
        double frames = 0;
        for (const auto& session : s->router().AllSessions()) {
          frames += static_cast<double>(session->queued_frames());
        }
        return frames;
      });
  metrics->AddCounter("im_message_accepted_total",
                      "Sends committed as new entries.",
                      [stats] { return stats->sends_acked.load(); });
  metrics->AddCounter(
      "im_message_duplicates_total",
      "Sends answered with the entry stored first (client retries).",
      [stats] { return stats->sends_duplicate.load(); });
  metrics->AddCounter("im_message_send_failures_total", "Sends that failed.",
                      [stats] { return stats->sends_failed.load(); });
  return metrics;
}

}  // namespace im::message
