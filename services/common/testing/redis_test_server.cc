#include "services/common/testing/redis_test_server.h"

#include <cstdlib>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace im::testing {

std::optional<RedisAddress> TestRedisAddressOrFail() {
  const char* value = std::getenv("IM_TEST_REDIS_ADDR");
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << "IM_TEST_REDIS_ADDR is not set: run this test through "
                     "scripts/test, or start redis-server (scripts/redis.sh) "
                     "and pass --test_env=IM_TEST_REDIS_ADDR=127.0.0.1:PORT";
    return std::nullopt;
  }
  absl::StatusOr<RedisAddress> address = ParseRedisAddress(value);
  if (!address.ok()) {
    ADD_FAILURE() << "IM_TEST_REDIS_ADDR: " << address.status();
    return std::nullopt;
  }
  return *address;
}

std::string TestRedisPrefix() {
  absl::BitGen gen;
  return absl::StrFormat("t%016x:", absl::Uniform<uint64_t>(gen));
}

}  // namespace im::testing
