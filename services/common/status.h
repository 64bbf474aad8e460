#ifndef IM_SERVICES_COMMON_STATUS_H_
#define IM_SERVICES_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace im {

// The one place absl::Status becomes grpc::Status at the RPC edge. Codes map
// one to one (both follow google.rpc.Code); the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The reverse, for results of calls to other services.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace im

#endif  // IM_SERVICES_COMMON_STATUS_H_
