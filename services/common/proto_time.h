#ifndef IM_SERVICES_COMMON_PROTO_TIME_H_
#define IM_SERVICES_COMMON_PROTO_TIME_H_

#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace im {

// absl::Time <-> google.protobuf.Timestamp (nanos always in [0, 1e9)).
void SetProtoTime(absl::Time t, google::protobuf::Timestamp* out);
absl::Time FromProtoTime(const google::protobuf::Timestamp& t);

}  // namespace im

#endif  // IM_SERVICES_COMMON_PROTO_TIME_H_
