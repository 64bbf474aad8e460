#include "services/presence/presence_metrics.h"

namespace im::presence {

std::shared_ptr<observability::SampledMetrics> PresenceMetrics(
    const PresenceServiceImpl& service) {
  auto metrics = std::make_shared<observability::SampledMetrics>();
  const PresenceServiceImpl* const s = &service;
  metrics->AddGauge("im_presence_leases", "Live device leases.",
                    [s] { return s->stats().leases; });
  metrics->AddGauge("im_presence_users_online",
                    "Users with at least one device online.",
                    [s] { return s->stats().users_online; });
  metrics->AddGauge("im_presence_nodes", "Message nodes holding leases.",
                    [s] { return s->stats().nodes; });
  metrics->AddGauge("im_presence_subscriptions", "Open Subscribe streams.",
                    [s] { return s->stats().subscriptions; });
  metrics->AddCounter(
      "im_presence_lease_expiries_total",
      "Leases dropped because their message node stopped heartbeating.",
      [s] { return s->stats().leases_expired; });
  metrics->AddCounter("im_presence_updates_sent_total",
                      "Presence updates sent to subscribers.",
                      [s] { return s->stats().updates_sent; });
  metrics->AddCounter("im_presence_update_batches_total",
                      "Presence batches sent to subscribers.",
                      [s] { return s->stats().batches_sent; });
  metrics->AddCounter("im_presence_last_seen_writes_total",
                      "last_seen rows written to the database.",
                      [s] { return s->stats().last_seen_rows_written; });
  metrics->AddCounter("im_presence_last_seen_write_failures_total",
                      "Failed last_seen writes (retried later).",
                      [s] { return s->stats().last_seen_write_failures; });
  return metrics;
}

}  // namespace im::presence
