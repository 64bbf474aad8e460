#ifndef IM_SERVICES_COMMON_REDIS_FLAGS_H_
#define IM_SERVICES_COMMON_REDIS_FLAGS_H_

#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "services/common/redis_connection.h"

// --redis and --redis_prefix, shared by the binaries that can run as
// several nodes (message, presence). Only main.cc files link this target.
ABSL_DECLARE_FLAG(std::string, redis);
ABSL_DECLARE_FLAG(std::string, redis_prefix);

namespace im {

struct RedisLink {
  RedisAddress address;
  std::string key_prefix;
};

// nullopt without --redis (this node alone); INVALID_ARGUMENT for an
// address that is not host:port or an empty prefix.
absl::StatusOr<std::optional<RedisLink>> RedisLinkFromFlags();

}  // namespace im

#endif  // IM_SERVICES_COMMON_REDIS_FLAGS_H_
