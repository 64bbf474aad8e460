#include "services/common/redis_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, redis, "",
          "host:port of the Redis server linking several nodes of this "
          "service (docs/scaling.md); empty = this node alone, nothing goes "
          "to Redis");
ABSL_FLAG(std::string, redis_prefix, "im:",
          "Prefix of every Redis key and channel; the nodes sharing traffic "
          "use the same one");

namespace im {

absl::StatusOr<std::optional<RedisLink>> RedisLinkFromFlags() {
  const std::string redis = absl::GetFlag(FLAGS_redis);
  if (redis.empty()) return std::nullopt;
  absl::StatusOr<RedisAddress> address = ParseRedisAddress(redis);
  if (!address.ok()) return address.status();
  const std::string prefix = absl::GetFlag(FLAGS_redis_prefix);
  if (prefix.empty()) {
    return absl::InvalidArgumentError("--redis_prefix may not be empty");
  }
  return RedisLink{*address, prefix};
}

}  // namespace im
