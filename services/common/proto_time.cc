#include "services/common/proto_time.h"

namespace im {

void SetProtoTime(absl::Time t, google::protobuf::Timestamp* out) {
  // ToUnixSeconds rounds toward the past, so the remainder is non-negative.
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(seconds)) /
                                      absl::Nanoseconds(1)));
}

absl::Time FromProtoTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace im
