#ifndef IM_SERVICES_COMMON_TESTING_REDIS_TEST_SERVER_H_
#define IM_SERVICES_COMMON_TESTING_REDIS_TEST_SERVER_H_

#include <optional>
#include <string>

#include "services/common/redis_connection.h"

// The Redis server of tests tagged "redis": IM_TEST_REDIS_ADDR (host:port,
// passed with bazel test --test_env; scripts/test starts one). Tests share
// it, so each uses keys and channels under its own TestRedisPrefix().

namespace im::testing {

// The test server, or nullopt after failing the current test with how to
// provide one (tests never skip silently).
std::optional<RedisAddress> TestRedisAddressOrFail();

// A prefix no other test run uses ("t<random>:").
std::string TestRedisPrefix();

}  // namespace im::testing

#endif  // IM_SERVICES_COMMON_TESTING_REDIS_TEST_SERVER_H_
