#ifndef IM_OBSERVABILITY_MYSQL_POOL_METRICS_H_
#define IM_OBSERVABILITY_MYSQL_POOL_METRICS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "storage/mysql/mysql_pool.h"

namespace im::observability {

// A MySQL pool's metrics, fed by MysqlPool's observer hooks:
//   mysql_pool_size                      gauge, the pool's connection limit
//                                        (SetPoolSize)
//   mysql_pool_in_use                    gauge, connections leased
//   mysql_pool_open                      gauge, connections open (leased,
//                                        idle or connecting)
//   mysql_pool_waits_total               acquisitions that waited for a
//                                        free connection
//   mysql_pool_acquire_seconds           histogram, time to get a connection
//   mysql_pool_acquire_failures_total    acquisitions that failed
//   mysql_pool_connects_total{result}    new sessions, "ok" or "error"
//   mysql_pool_discards_total            broken or stale sessions dropped
//   mysql_query_duration_seconds{operation}  histogram, one named store
//                                        operation (a transaction, retries
//                                        included)
//   mysql_query_errors_total{operation}  operations that failed
//   mysql_query_retries_total{operation} transactions re-run after deadlock
// `operation` values are the stores' fixed operation names. Every series
// without a label exists from the start. Thread-safe and cheap, as the
// observer contract requires.
class MysqlPoolMetrics final : public storage::MysqlPoolObserver {
 public:
  // Registers in `registry`, which must outlive this.
  explicit MysqlPoolMetrics(prometheus::Registry& registry);
  ~MysqlPoolMetrics() override;

  // MysqlOptions::pool_size of the observed pool.
  void SetPoolSize(int pool_size);

  void OnAcquire(absl::Duration latency, bool waited,
                 const absl::Status& status) override;
  void OnPoolState(int in_use, int open) override;
  void OnConnect(absl::Duration latency, const absl::Status& status) override;
  void OnDiscard() override;
  void OnOperation(absl::string_view operation, absl::Duration latency,
                   const absl::Status& status, int attempts) override;

 private:
  struct OperationSeries {
    prometheus::Histogram* duration = nullptr;
    prometheus::Counter* errors = nullptr;
    prometheus::Counter* retries = nullptr;
  };
  const OperationSeries& SeriesFor(absl::string_view operation);

  prometheus::Gauge& size_;
  prometheus::Gauge& in_use_;
  prometheus::Gauge& open_;
  prometheus::Counter& waits_;
  prometheus::Histogram& acquire_seconds_;
  prometheus::Counter& acquire_failures_;
  prometheus::Counter& connects_ok_;
  prometheus::Counter& connects_failed_;
  prometheus::Counter& discards_;
  prometheus::Family<prometheus::Histogram>& query_duration_;
  prometheus::Family<prometheus::Counter>& query_errors_;
  prometheus::Family<prometheus::Counter>& query_retries_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<OperationSeries>> series_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace im::observability

#endif  // IM_OBSERVABILITY_MYSQL_POOL_METRICS_H_
