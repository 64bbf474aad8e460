#ifndef IM_SERVICES_COMMON_HEALTH_PROBE_H_
#define IM_SERVICES_COMMON_HEALTH_PROBE_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace im {

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class HealthStatus {
  kUnknown = 0,
  kServing = 1,
  kNotServing = 2,
  kServiceUnknown = 3,
};

absl::string_view HealthStatusName(HealthStatus status);

// One grpc.health.v1.Health/Check call for `service` ("" = the whole
// server). The messages are encoded by hand, so no health proto is needed.
// The call's own failure comes back as the status: UNAVAILABLE or
// DEADLINE_EXCEEDED when the server cannot be reached within `timeout`,
// NOT_FOUND for a service name the server does not know.
absl::StatusOr<HealthStatus> CheckHealth(
    const std::shared_ptr<grpc::Channel>& channel, absl::string_view service,
    absl::Duration timeout);

}  // namespace im

#endif  // IM_SERVICES_COMMON_HEALTH_PROBE_H_
