#include "services/common/retry_after.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace im {
namespace {

constexpr absl::string_view kPayloadUrl = "type.im/retry-after-ms";

}  // namespace

absl::Status RetryAfterError(absl::string_view what, absl::Duration wait) {
  // Whole milliseconds, rounded up so a client waiting exactly this long is
  // not refused again.
  const int64_t ms = std::max<int64_t>(
      1, absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
  const int64_t seconds = (ms + 999) / 1000;
  absl::Status status = absl::ResourceExhaustedError(
      absl::StrCat(what, "; retry in ", seconds, " s"));
  status.SetPayload(kPayloadUrl, absl::Cord(absl::StrCat(ms)));
  return status;
}

std::optional<absl::Duration> RetryAfterOf(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  int64_t ms = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &ms)) {
    return std::nullopt;
  }
  return absl::Milliseconds(ms);
}

void AddRetryAfterTrailer(const absl::Status& status,
                          grpc::ServerContextBase* context) {
  std::optional<absl::Duration> wait = RetryAfterOf(status);
  if (!wait.has_value()) return;
  context->AddTrailingMetadata("retry-after-ms",
                               absl::StrCat(absl::ToInt64Milliseconds(*wait)));
}

}  // namespace im
