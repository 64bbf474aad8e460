#include "observability/mysql_pool_metrics.h"

#include <utility>

namespace im::observability {
namespace {

// From a cached primary-key read on loopback (~100 us) to a slow batch.
const prometheus::Histogram::BucketBoundaries& QueryBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
  return *buckets;
}

prometheus::Family<prometheus::Counter>& CounterFamily(
    prometheus::Registry& registry, const std::string& name,
    const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Gauge& Gauge(prometheus::Registry& registry,
                         const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add(
      {});
}

}  // namespace

MysqlPoolMetrics::MysqlPoolMetrics(prometheus::Registry& registry)
    : size_(Gauge(registry, "mysql_pool_size",
                  "Connections the MySQL pool may open.")),
      in_use_(Gauge(registry, "mysql_pool_in_use",
                    "MySQL connections leased to a caller.")),
      open_(Gauge(registry, "mysql_pool_open",
                  "MySQL connections open (leased, idle or connecting).")),
      waits_(CounterFamily(registry, "mysql_pool_waits_total",
                           "Acquisitions that waited for a free connection.")
                 .Add({})),
      acquire_seconds_(prometheus::BuildHistogram()
                           .Name("mysql_pool_acquire_seconds")
                           .Help("Seconds to get a connection from the pool.")
                           .Register(registry)
                           .Add({}, QueryBuckets())),
      acquire_failures_(
          CounterFamily(registry, "mysql_pool_acquire_failures_total",
                        "Acquisitions that failed (timeout or server down).")
              .Add({})),
      connects_ok_(CounterFamily(registry, "mysql_pool_connects_total",
                                 "New MySQL sessions opened, by result.")
                       .Add({{"result", "ok"}})),
      connects_failed_(CounterFamily(registry, "mysql_pool_connects_total",
                                     "New MySQL sessions opened, by result.")
                           .Add({{"result", "error"}})),
      discards_(CounterFamily(registry, "mysql_pool_discards_total",
                              "Broken or stale MySQL sessions dropped.")
                    .Add({})),
      query_duration_(prometheus::BuildHistogram()
                          .Name("mysql_query_duration_seconds")
                          .Help("Seconds per store operation (a statement or "
                                "transaction, deadlock retries included).")
                          .Register(registry)),
      query_errors_(CounterFamily(registry, "mysql_query_errors_total",
                                  "Store operations that failed.")),
      query_retries_(
          CounterFamily(registry, "mysql_query_retries_total",
                        "Transactions run again after a deadlock.")) {}

MysqlPoolMetrics::~MysqlPoolMetrics() = default;

void MysqlPoolMetrics::SetPoolSize(int pool_size) { size_.Set(pool_size); }

void MysqlPoolMetrics::OnAcquire(absl::Duration latency, bool waited,
                                 const absl::Status& status) {
  if (waited) waits_.Increment();
  if (!status.ok()) acquire_failures_.Increment();
  acquire_seconds_.Observe(absl::ToDoubleSeconds(latency));
}

void MysqlPoolMetrics::OnPoolState(int in_use, int open) {
  in_use_.Set(in_use);
  open_.Set(open);
}

void MysqlPoolMetrics::OnConnect(absl::Duration, const absl::Status& status) {
  (status.ok() ? connects_ok_ : connects_failed_).Increment();
}

void MysqlPoolMetrics::OnDiscard() { discards_.Increment(); }

void MysqlPoolMetrics::OnOperation(absl::string_view operation,
                                   absl::Duration latency,
                                   const absl::Status& status, int attempts) {
  const OperationSeries& series = SeriesFor(operation);
  series.duration->Observe(absl::ToDoubleSeconds(latency));
  if (!status.ok()) series.errors->Increment();
  if (attempts > 1) series.retries->Increment(attempts - 1);
}

const MysqlPoolMetrics::OperationSeries& MysqlPoolMetrics::SeriesFor(
    absl::string_view operation) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = series_.find(operation);
    if (it != series_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<OperationSeries>& slot = series_[operation];
  if (slot == nullptr) {
    const prometheus::Labels labels = {{"operation", std::string(operation)}};
    auto series = std::make_unique<OperationSeries>();
    series->duration = &query_duration_.Add(labels, QueryBuckets());
    series->errors = &query_errors_.Add(labels);
    series->retries = &query_retries_.Add(labels);
    slot = std::move(series);
  }
  return *slot;
}

}  // namespace im::observability
