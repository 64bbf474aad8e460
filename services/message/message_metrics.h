#ifndef IM_SERVICES_MESSAGE_MESSAGE_METRICS_H_
#define IM_SERVICES_MESSAGE_MESSAGE_METRICS_H_

#include <cstddef>

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace im::message {

// What the message pipeline records as it goes (README.md, Metrics):
//   im_message_commit_batch_size        histogram, sends per group commit
//   im_message_send_commit_seconds      histogram, a send reaching the log
//                                       writer to its commit
//   im_message_commit_deliver_seconds   histogram, a live entry's publication
//                                       after commit to its frame written on
//                                       a recipient's stream
//   im_message_delivered_total          entry frames written to streams
//                                       (live and replayed)
//   im_message_overflow_cuts_total      streams closed because their
//                                       outbound queue was full
// Values read from the node's state at scrape time are in
// message_node_metrics.h. Every series exists from the start. Thread-safe.
class MessageMetrics {
 public:
  // Registers the families in `registry`, which must outlive this.
  explicit MessageMetrics(prometheus::Registry& registry);
  // A process-wide instance whose registry nothing serves: the default for
  // components built without metrics (tests, tools).
  static MessageMetrics& Unexported();

  MessageMetrics(const MessageMetrics&) = delete;
  MessageMetrics& operator=(const MessageMetrics&) = delete;

  void BatchCommitted(size_t sends) {
    batch_size_.Observe(static_cast<double>(sends));
  }
  void SendCommitted(absl::Duration since_enqueued) {
    send_commit_.Observe(absl::ToDoubleSeconds(since_enqueued));
  }
  // `since_published`: for live entries only (replays are not deliveries
  // of something just committed).
  void EntryWritten() { delivered_.Increment(); }
  void LiveEntryWritten(absl::Duration since_published) {
    delivered_.Increment();
    commit_deliver_.Observe(absl::ToDoubleSeconds(since_published));
  }
  void StreamCutForOverflow() { overflow_cuts_.Increment(); }

 private:
  prometheus::Histogram& batch_size_;
  prometheus::Histogram& send_commit_;
  prometheus::Histogram& commit_deliver_;
  prometheus::Counter& delivered_;
  prometheus::Counter& overflow_cuts_;
};

}  // namespace im::message

#endif  // IM_SERVICES_MESSAGE_MESSAGE_METRICS_H_
