#include "observability/server_metrics.h"

#include <exception>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace im::observability {

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_shared<ProcessMetrics>()),
      grpc_(std::make_unique<GrpcServerMetrics>(*registry_)) {}

ServerMetrics::~ServerMetrics() = default;

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    const Options& options) {
  std::unique_ptr<ServerMetrics> metrics(new ServerMetrics());
  if (options.listen_address.empty()) return metrics;

  const size_t colon = options.listen_address.rfind(':');
  int requested_port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(options.listen_address.substr(colon + 1),
                        &requested_port) ||
      requested_port < 0 || requested_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics listen address must be host:port, got \"",
                     options.listen_address, "\""));
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // One thread: scrapes are rare and each is a single small response.
    exposer = std::make_unique<prometheus::Exposer>(options.listen_address, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", options.listen_address, ": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", options.listen_address));
  }
  exposer->RegisterCollectable(metrics->registry_);
  exposer->RegisterCollectable(metrics->process_);
  {
    absl::MutexLock lock(&metrics->mu_);
    metrics->exposer_ = std::move(exposer);
  }
  metrics->port_ = ports.front();
  metrics->address_ =
      absl::StrCat(options.listen_address.substr(0, colon), ":", ports.front());
  return metrics;
}

void ServerMetrics::AddCollectable(
    std::shared_ptr<prometheus::Collectable> collectable) {
  absl::MutexLock lock(&mu_);
  if (exposer_ != nullptr) exposer_->RegisterCollectable(collectable);
  collectables_.push_back(std::move(collectable));
}

void ServerMetrics::StopServing() {
  std::unique_ptr<prometheus::Exposer> exposer;
  {
    absl::MutexLock lock(&mu_);
    exposer = std::move(exposer_);
  }
  // Joins the HTTP threads (a scrape in progress finishes first).
  exposer.reset();
}

std::string ServerMetrics::Scrape() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& family : process_->Collect()) {
    families.push_back(std::move(family));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& collectable : collectables_) {
    for (prometheus::MetricFamily& family : collectable->Collect()) {
      families.push_back(std::move(family));
    }
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace im::observability
