#ifndef IM_SERVICES_COMMON_RETRY_AFTER_H_
#define IM_SERVICES_COMMON_RETRY_AFTER_H_

#include <grpcpp/server_context.h>

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace im {

// RESOURCE_EXHAUSTED for a rate limit: "<what>; retry in N s" with the wait
// also carried as a status payload, so the RPC edge can send it as
// `retry-after-ms` trailing metadata.
absl::Status RetryAfterError(absl::string_view what, absl::Duration wait);

// The wait attached by RetryAfterError, if any.
std::optional<absl::Duration> RetryAfterOf(const absl::Status& status);

// Adds `retry-after-ms: <ms>` trailing metadata when `status` carries a
// wait. Call before finishing the RPC.
void AddRetryAfterTrailer(const absl::Status& status,
                          grpc::ServerContextBase* context);

}  // namespace im

#endif  // IM_SERVICES_COMMON_RETRY_AFTER_H_
