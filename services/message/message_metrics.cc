#include "services/message/message_metrics.h"

#include "observability/unexported_registry.h"

namespace im::message {
namespace {

// Batches of 1 (idle) up to LogWriter's default max_batch of 512.
const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  return *buckets;
}

// From a loopback commit (~1 ms) to an overloaded node.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,  0.5,    1,     2.5,  5};
  return *buckets;
}

prometheus::Histogram& Histogram(
    prometheus::Registry& registry, const char* name, const char* help,
    const prometheus::Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram()
      .Name(name)
      .Help(help)
      .Register(registry)
      .Add({}, buckets);
}

prometheus::Counter& Counter(prometheus::Registry& registry, const char* name,
                             const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add(
      {});
}

}  // namespace

MessageMetrics& MessageMetrics::Unexported() {
  static MessageMetrics* const metrics =
      new MessageMetrics(observability::UnexportedRegistry());
  return *metrics;
}

MessageMetrics::MessageMetrics(prometheus::Registry& registry)
    : batch_size_(Histogram(registry, "im_message_commit_batch_size",
                            "Sends committed per group-commit transaction.",
                            BatchBuckets())),
      send_commit_(Histogram(
          registry, "im_message_send_commit_seconds",
          "Seconds from a send reaching the log writer to its commit.",
          LatencyBuckets())),
      commit_deliver_(Histogram(
          registry, "im_message_commit_deliver_seconds",
          "Seconds from a committed entry's publication to its frame "
          "written on a recipient's stream.",
          LatencyBuckets())),
      delivered_(Counter(registry, "im_message_delivered_total",
                         "Entry frames written to streams.")),
      overflow_cuts_(
          Counter(registry, "im_message_overflow_cuts_total",
                  "Streams closed because their outbound queue was full.")) {}

}  // namespace im::message
